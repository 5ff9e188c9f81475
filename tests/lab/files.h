// SPDX-License-Identifier: Apache-2.0
// Small file helpers shared by the lab's parts.
#pragma once

#include <filesystem>
#include <string>

namespace tandem::lab {

// The whole file; throws std::runtime_error naming the path when it cannot be read.
std::string read_file(const std::filesystem::path& path);
// The whole file, or "" when it does not exist.
std::string read_file_or_empty(const std::filesystem::path& path);

}  // namespace tandem::lab
