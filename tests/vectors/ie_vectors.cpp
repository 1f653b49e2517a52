// ie-vectors: checks known-answer vector files against libie. Usage:
//   ie-vectors FILE...
// Detects each file's kind (PSP or Noise test-vector format), checks every vector, prints one
// line per failure, then "N passed, N failed, N skipped" (skipped: a protocol libie does not
// implement). Exit status: 0 if nothing failed, 1 on any failure, 2 on usage or unreadable
// or unrecognised input.
#include <cstdio>
#include <fstream>
#include <string>

#include "vector_check.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: ie-vectors FILE...\n");
    return 2;
  }
  ie::vectors::Report report;
  bool input_error = false;
  for (int i = 1; i < argc; ++i) {
    const std::string file = argv[i];
    std::ifstream in(file);
    if (!in) {
      std::fprintf(stderr, "ie-vectors: cannot open %s\n", file.c_str());
      input_error = true;
      continue;
    }
    nlohmann::json doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) {
      std::fprintf(stderr, "ie-vectors: %s: not valid JSON\n", file.c_str());
      input_error = true;
      continue;
    }
    if (ie::vectors::is_psp_vectors(doc)) {
      ie::vectors::check_psp_vectors(doc, file, report);
    } else if (ie::vectors::is_noise_vectors(doc)) {
      ie::vectors::check_noise_vectors(doc, file, report);
    } else {
      std::fprintf(stderr, "ie-vectors: %s: unknown vector format\n", file.c_str());
      input_error = true;
    }
  }
  for (const auto& line : report.failures)
    std::printf("FAIL %s\n", line.c_str());
  if (std::getenv("IE_VECTORS_VERBOSE") != nullptr) {
    for (const auto& line : report.skips)
      std::printf("SKIP %s\n", line.c_str());
  }
  std::printf("%zu passed, %zu failed, %zu skipped\n", report.passed, report.failed,
              report.skipped);
  if (input_error) return 2;
  return report.failed == 0 ? 0 : 1;
}
