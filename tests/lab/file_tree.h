// SPDX-License-Identifier: Apache-2.0
// Trees of seeded files and their digests: what a test or the demo writes on a file system on
// one node and reads back on the other after a switchover.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace tandem::lab {

// SHA-256 of the file, in hex; throws std::runtime_error when it cannot be read.
std::string sha256_file(const std::string& path);

// Writes `files` files of seeded sizes (1 byte to 700 KiB, most not block multiples) and bytes
// in a few directories under `root`, each fsync'ed; adds their sizes to `bytes`. Returns the
// digests by relative path. Throws std::runtime_error naming the file on an error.
std::map<std::string, std::string> write_tree(const std::string& root, uint64_t seed, int files,
                                              uint64_t& bytes);

// The digests of every regular file under `root` by relative path (lost+found skipped).
std::map<std::string, std::string> read_tree(const std::string& root);

}  // namespace tandem::lab
