// SPDX-License-Identifier: Apache-2.0
// Small file helpers shared by the lab's parts.
#include "tests/lab/files.h"

#include <fstream>
#include <iterator>
#include <stdexcept>

namespace tandem::lab {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string read_file_or_empty(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return {};
  return read_file(path);
}

}  // namespace tandem::lab
