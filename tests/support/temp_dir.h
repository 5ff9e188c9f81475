// SPDX-License-Identifier: Apache-2.0
// A temporary directory for a test, removed with everything in it when it goes out of scope,
// even when the test fails.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

namespace tandem::test {

class temp_dir {
 public:
  // <temp dir>/<prefix>-XXXXXX; with prefer_shm, /dev/shm/<prefix>-XXXXXX when /dev/shm takes
  // it (fsync costs nothing there, so a test measures the code, not the disk).
  explicit temp_dir(const std::string& prefix = "tandem", bool prefer_shm = false) {
    if (prefer_shm) {
      std::string shm = "/dev/shm/" + prefix + "-XXXXXX";
      if (::mkdtemp(shm.data()) != nullptr) {
        path_ = shm;
        return;
      }
    }
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + tmpl);
    }
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Writes `content` to file(name) and returns that path.
  std::string write(const std::string& name, const std::string& content) const {
    const std::string p = file(name);
    std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
    return p;
  }

 private:
  std::string path_;
};

}  // namespace tandem::test
