// SPDX-License-Identifier: Apache-2.0
// Trees of seeded files and their digests (OpenSSL's EVP SHA-256).
#include "tests/lab/file_tree.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <vector>

#include <openssl/evp.h>

#include "tests/lab/tool_util.h"

namespace tandem::lab {

namespace fs = std::filesystem;

std::string sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("read " + path + ": " + std::strerror(errno));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 16);
  while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0)
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(in.gcount()));
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx.get(), d, &len);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) {
    static const char* x = "0123456789abcdef";
    hex += x[d[i] >> 4];
    hex += x[d[i] & 15];
  }
  return hex;
}

std::map<std::string, std::string> write_tree(const std::string& root, uint64_t seed, int files,
                                              uint64_t& bytes) {
  std::map<std::string, std::string> digests;
  for (int i = 0; i < files; ++i) {
    const uint64_t r = tool::mix(seed + static_cast<uint64_t>(i));
    const std::string rel = "d" + std::to_string(i % 5) + "/s" + std::to_string(i % 3) + "/f" +
                            std::to_string(i) + ".bin";
    fs::create_directories(fs::path(root + "/" + rel).parent_path());
    std::string data(1 + r % (700u << 10), '\0');  // up to 700 KiB, most not block multiples
    uint64_t state = r;
    for (size_t k = 0; k < data.size(); k += 8) {
      state = tool::mix(state);
      std::memcpy(data.data() + k, &state, std::min<size_t>(8, data.size() - k));
    }
    const std::string path = root + "/" + rel;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("create " + path + ": " + std::strerror(errno));
    const bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) &&
                    ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) throw std::runtime_error("write " + path + ": " + std::strerror(errno));
    digests[rel] = sha256_file(path);
    bytes += data.size();
  }
  return digests;
}

std::map<std::string, std::string> read_tree(const std::string& root) {
  std::map<std::string, std::string> digests;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    const std::string rel = fs::relative(e.path(), root).string();
    if (rel.rfind("lost+found", 0) == 0) continue;
    digests[rel] = sha256_file(e.path().string());
  }
  return digests;
}

}  // namespace tandem::lab
