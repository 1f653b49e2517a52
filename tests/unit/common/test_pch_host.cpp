// Builds tests/unit/common/test_pch.hpp once for every unit test binary (REUSE_FROM); the
// program itself does nothing and is not a test.
int main() {
  return 0;
}
