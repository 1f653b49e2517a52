// iectl: the command line of the InterEdge host daemon (docs/iectl.md). Every verb is one
// file under verbs/ and registers itself; this only runs the registry (verb.cpp).
#include <iostream>

#include "verb.hpp"

int main(int argc, char** argv) {
  return iectl::run(argc, argv, std::cout, std::cerr);
}
