// SPDX-License-Identifier: Apache-2.0
// key_file (dataplane/crypto/key_file.h): sizes, permissions, file types, generation.
#include "dataplane/crypto/key_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

namespace tandem::dp {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the temp dir, removed with everything in it at the end.
class key_file_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "tandem-key-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr)
        << "mkdtemp: " << std::generic_category().message(errno);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Writes `content` to a new file with exactly `mode`; returns its path.
  std::string write(const std::string& name, const std::vector<uint8_t>& content,
                    mode_t mode = 0600) {
    std::string path = (dir_ / name).string();
    {
      std::ofstream f(path, std::ios::binary);
      f.write(reinterpret_cast<const char*>(content.data()),
              static_cast<std::streamsize>(content.size()));
    }
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }

  static std::vector<uint8_t> bytes(size_t n) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i)
      v[i] = static_cast<uint8_t>(i * 7 + 1);
    return v;
  }

  // The message of the exception `load_key_file(path)` throws (fails the test if none).
  template <typename E = std::runtime_error>
  static std::string load_error(const std::string& path) {
    try {
      (void)load_key_file(path);
    } catch (const E& e) {
      return e.what();
    }
    ADD_FAILURE() << "load_key_file(" << path << ") did not throw";
    return {};
  }

  fs::path dir_;
};

TEST_F(key_file_test, loads_16_24_32_bytes) {
  for (const size_t n : {16u, 24u, 32u}) {
    const auto path = write("k" + std::to_string(n), bytes(n));
    EXPECT_EQ(load_key_file(path), bytes(n));
  }
  // Read-only for the owner is fine too.
  EXPECT_EQ(load_key_file(write("ro", bytes(32), 0400)), bytes(32));
}

TEST_F(key_file_test, refuses_other_sizes_naming_size_and_expected) {
  for (const size_t n : {0u, 1u, 15u, 17u, 31u, 33u, 44u, 64u, 65u}) {
    const auto path = write("bad" + std::to_string(n), bytes(n));
    const std::string msg = load_error(path);
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("holds " + std::to_string(n) + " bytes"), std::string::npos) << msg;
    EXPECT_NE(msg.find("16, 24 or 32"), std::string::npos) << msg;
  }
}

TEST_F(key_file_test, refuses_group_or_other_access) {
  for (const mode_t mode : {0640, 0604, 0644, 0660, 0610, 0601, 0700 | 0070, 0602, 0620}) {
    const auto path = write("m" + std::to_string(mode), bytes(32), mode);
    const std::string msg = load_error(path);
    char want[8];
    std::snprintf(want, sizeof want, "%04o", static_cast<unsigned>(mode));
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(want), std::string::npos) << msg;
    EXPECT_NE(msg.find("chmod 600"), std::string::npos) << msg;
  }
}

TEST_F(key_file_test, refuses_what_is_not_a_regular_file) {
  const std::string sub = (dir_ / "adir").string();
  ASSERT_EQ(::mkdir(sub.c_str(), 0700), 0);
  std::string msg = load_error(sub);
  EXPECT_NE(msg.find("directory"), std::string::npos) << msg;
  EXPECT_NE(msg.find(sub), std::string::npos) << msg;

  // A FIFO must be refused, not block the caller.
  const std::string fifo = (dir_ / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  msg = load_error(fifo);
  EXPECT_NE(msg.find("FIFO"), std::string::npos) << msg;

  msg = load_error("/dev/null");
  EXPECT_NE(msg.find("character device"), std::string::npos) << msg;
}

TEST_F(key_file_test, missing_file_is_a_system_error_naming_it) {
  const std::string path = (dir_ / "nope").string();
  try {
    (void)load_key_file(path);
    FAIL() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST_F(key_file_test, follows_a_symlink_to_a_good_file) {
  const auto target = write("target", bytes(24));
  const std::string link = (dir_ / "link").string();
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  EXPECT_EQ(load_key_file(link), bytes(24));
}

TEST_F(key_file_test, generate_creates_0600_random_keys) {
  const mode_t old_umask = ::umask(0);  // the mode must not depend on the umask
  for (const size_t n : {16u, 24u, 32u}) {
    const std::string path = (dir_ / ("gen" + std::to_string(n))).string();
    generate_key_file(path, n);
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(load_key_file(path).size(), n);
  }
  ::umask(old_umask);
  EXPECT_NE(load_key_file((dir_ / "gen32").string()), load_key_file((dir_ / "gen16").string()));
  const std::string a = (dir_ / "a").string();
  const std::string b = (dir_ / "b").string();
  generate_key_file(a, 32);
  generate_key_file(b, 32);
  EXPECT_NE(load_key_file(a), load_key_file(b));
}

TEST_F(key_file_test, generate_never_overwrites_and_checks_size) {
  const auto existing = write("existing", bytes(32));
  try {
    generate_key_file(existing, 32);
    FAIL() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EEXIST);
    EXPECT_NE(std::string(e.what()).find(existing), std::string::npos) << e.what();
  }
  EXPECT_EQ(load_key_file(existing), bytes(32)) << "left untouched";

  const std::string link = (dir_ / "dangling").string();
  ASSERT_EQ(::symlink((dir_ / "elsewhere").c_str(), link.c_str()), 0);
  EXPECT_THROW(generate_key_file(link, 32), std::system_error);
  EXPECT_FALSE(fs::exists(dir_ / "elsewhere"));

  const std::string path = (dir_ / "odd").string();
  EXPECT_THROW(generate_key_file(path, 20), std::runtime_error);
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace tandem::dp
