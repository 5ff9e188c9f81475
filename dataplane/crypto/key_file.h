// SPDX-License-Identifier: Apache-2.0
// The replication link's static key file: raw 16, 24 or 32 random bytes, mode 0600.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tandem::dp {

// Reads a key file: exactly 16, 24 or 32 raw bytes (AES-128/192/256), no text encoding, no
// newline. Refused, with a std::runtime_error naming the file:
//   - when it is not a regular file (symlinks to one are followed);
//   - when group or others have any permission on it (mode & 077): the message gives the mode
//     and says to `chmod 600` it;
//   - when its size is not 16, 24 or 32 bytes: the message gives the size and the expected ones.
// A file that cannot be opened or read throws std::system_error naming the file. The stack
// buffer the key passes through is wiped; the caller owns the returned copy and should wipe it
// with secure_wipe (kdf.h) when done. Setup code.
[[nodiscard]] std::vector<uint8_t> load_key_file(const std::string& path);

// Creates a new key file of `bytes` (16, 24 or 32) random bytes from OpenSSL's RAND_bytes, mode
// 0600 whatever the umask. Never overwrites: an existing path (or a symlink) throws
// std::system_error (EEXIST / ELOOP) naming the file. The file is fsync'ed before returning, and
// removed again when writing fails.
void generate_key_file(const std::string& path, size_t bytes);

}  // namespace tandem::dp
