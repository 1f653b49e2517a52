// The known-answer vector checkers behind `ie-vectors`: one per vector-file kind. Each
// checker reports every vector as passed, failed (with one human line naming the vector and
// what differed) or skipped (a protocol this build does not implement, with the reason).
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace ie::vectors {

struct Report {
  std::size_t passed = 0;
  std::size_t failed = 0;
  std::size_t skipped = 0;
  std::vector<std::string> failures;  // one line per failure
  std::vector<std::string> skips;     // one line per skipped vector (why)

  void pass() { ++passed; }
  void fail(std::string line) {
    ++failed;
    failures.push_back(std::move(line));
  }
  void skip(std::string line) {
    ++skipped;
    skips.push_back(std::move(line));
  }
};

// PSP vectors (../shared/vectors/psp format: "kdf" and "packets" arrays).
bool is_psp_vectors(const nlohmann::json& doc);
void check_psp_vectors(const nlohmann::json& doc, const std::string& file, Report& report);

// Noise test vectors (cacophony/snow format: {"vectors": [{protocol_name, messages, ...}]}).
bool is_noise_vectors(const nlohmann::json& doc);
void check_noise_vectors(const nlohmann::json& doc, const std::string& file, Report& report);

}  // namespace ie::vectors
