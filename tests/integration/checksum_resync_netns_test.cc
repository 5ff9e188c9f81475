// SPDX-License-Identifier: Apache-2.0
// Checksum-driven resync between two tandem-replicators in lab namespaces, driven through the
// control socket and tandemctl: the initial full sync of two 1 GiB volumes that already hold the
// same data sends less than 1% of the volume, and a resync after scattered blocks of the
// secondary's disk changed behind its back sends exactly those blocks and leaves both images
// with the same digest. An online verify reports blocks that rotted under the secondary and
// repairs them on request.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "tests/lab/mirror_pair.h"
#include "tests/lab/tool_util.h"
#include "tests/support/tandemctl.h"

namespace tandem::lab {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using test::cli_result;
using test::tandemctl;

constexpr uint64_t block = 4096;

// Writes `len` bytes of the pattern `seed` at `offset` of the file.
void write_pattern(const std::string& path, uint64_t offset, uint64_t len, uint64_t seed) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path;
  std::vector<uint8_t> buf(len);
  for (uint64_t k = 0; k < len; k += 8) {
    const uint64_t v = tool::mix(seed * 0x9e3779b97f4a7c15ULL + offset + k);
    std::memcpy(buf.data() + k, &v, 8);
  }
  ASSERT_EQ(::pwrite(fd, buf.data(), len, static_cast<off_t>(offset)), static_cast<ssize_t>(len));
  ASSERT_EQ(::fsync(fd), 0);
  ::close(fd);
}

// SHA-256 of the whole file, as hex.
std::string file_digest(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "cannot open " + path;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<uint8_t> buf(8u << 20);
  ssize_t n;
  while ((n = ::read(fd, buf.data(), buf.size())) > 0)
    EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(n));
  ::close(fd);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  static const char* digits = "0123456789abcdef";
  for (unsigned i = 0; i < len; ++i) {
    hex += digits[md[i] >> 4];
    hex += digits[md[i] & 15];
  }
  return hex;
}

TEST(checksum_resync_netns, identical_volumes_then_scattered_differences) {
  mirror_pair_options o;
  o.mib = 1024;
  o.volume_extra = "resync: {rate: 0, checksum: true}";
  mirror_pair m(o);
  const uint64_t size = m.volume_bytes();

  // Two disks that already hold the same data (copied before the mirror was set up): four
  // 16 MiB regions of the same pattern in otherwise zero images.
  m.fresh_disks();
  for (int i = 0; i < 2; ++i)
    for (uint64_t r = 0; r < 4; ++r)
      write_pattern(m.image(i), r * (size / 4) + (3u << 20), 16u << 20, 7 + r);
  ASSERT_EQ(file_digest(m.image(0)), file_digest(m.image(1)));
  for (int i = 0; i < 2; ++i) {
    m.start(i);
    m.ok(i, {{"cmd", "create"}, {"volume", "db"}});
    m.ok(i, {{"cmd", "attach"}, {"volume", "db"}});
  }
  // The initial full sync: a checksum resync, since both nodes' configuration asks for it.
  m.ok(0, {{"cmd", "promote"}, {"volume", "db"}, {"force", true}});
  const auto synced = mirror_pair::in_sync;
  ASSERT_TRUE(m.wait_for(1, synced, 300s)) << m.volume(1).dump();
  ASSERT_TRUE(m.wait_for(0, synced, 60s)) << m.volume(0).dump();
  json v0 = m.volume(0);
  EXPECT_EQ(mirror_pair::counter(v0, "resync_bytes_sent"), 0u) << v0.dump();
  EXPECT_EQ(mirror_pair::counter(v0, "resync_bytes_same"), size) << v0.dump();
  EXPECT_EQ(mirror_pair::counter(m.volume(1), "resync_bytes_same"), size);
  const uint64_t wire = v0["transport"]["sent_bytes"].get<uint64_t>();
  EXPECT_LT(static_cast<double>(wire), 0.01 * static_cast<double>(size)) << wire;
  RecordProperty("identical_bytes_sent_per_volume_byte",
                 std::to_string(static_cast<double>(wire) / static_cast<double>(size)));

  // Scattered blocks of node2's disk change behind its back while it is disconnected (a
  // restored backup, bit rot): 300 single blocks 3.3 MiB apart, and one run of 40 blocks.
  cli_result r = tandemctl({"mirror", "disconnect", "db", "-r", m.sock(1)});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(m.wait_for(0, [](const json& v) { return v["connection"] != "connected"; }));
  for (uint64_t k = 0; k < 300; ++k)
    write_pattern(m.image(1), (k * 853 + 11) * block, block, 1000 + k);
  write_pattern(m.image(1), 200000 * block, 40 * block, 5000);
  ASSERT_NE(file_digest(m.image(0)), file_digest(m.image(1)));
  r = tandemctl({"mirror", "connect", "db", "-r", m.sock(1)});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(m.wait_for(0, synced, 60s)) << m.volume(0).dump();
  v0 = m.volume(0);
  const uint64_t sent0 = mirror_pair::counter(v0, "resync_bytes_sent");
  const uint64_t same0 = mirror_pair::counter(v0, "resync_bytes_same");

  r = tandemctl({"mirror", "resync", "db", "--full", "--checksum", "-r", m.sock(0)});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "volume db: resync requested\n");
  // Wait until the new resync started (or already ended) before waiting for the pair in sync.
  const uint64_t done0 = mirror_pair::counter(v0, "resyncs_completed");
  ASSERT_TRUE(m.wait_for(
      0,
      [&](const json& v) {
        return v["connection"] == "sync_source" ||
               mirror_pair::counter(v, "resyncs_completed") > done0;
      },
      60s, 2ms));
  ASSERT_TRUE(m.wait_for(1, synced, 300s)) << m.volume(1).dump();
  ASSERT_TRUE(m.wait_for(0, synced, 60s)) << m.volume(0).dump();
  v0 = m.volume(0);
  EXPECT_EQ(mirror_pair::counter(v0, "resync_bytes_sent") - sent0, 340 * block) << v0.dump();
  EXPECT_EQ(mirror_pair::counter(v0, "resync_bytes_same") - same0, size - 340 * block) << v0.dump();
  for (int i = 0; i < 2; ++i)
    m.ok(i, {{"cmd", "detach"}, {"volume", "db"}});
  EXPECT_EQ(file_digest(m.image(0)), file_digest(m.image(1)));
}

// Online verify through tandemctl: corruption injected under the secondary is reported with
// its offsets, nothing changes until a verify with --repair rewrites exactly those blocks.
TEST(checksum_resync_netns, verify_finds_corruption_and_repairs_it_on_request) {
  mirror_pair_options o;
  o.mib = 64;
  mirror_pair m(o);
  m.bring_up();
  const auto synced = mirror_pair::in_sync;
  ASSERT_TRUE(m.wait_for(1, synced, 60s)) << m.volume(1).dump();
  m.ok(0, {{"cmd", "workload"}, {"volume", "db"}, {"seed", 3}, {"count", 300}});
  ASSERT_TRUE(m.wait_for(0, [](const json& v) { return !v["workload"]["running"].get<bool>(); }));
  // 25 blocks of node2's disk rot under it (it is connected and idle as a secondary).
  for (uint64_t k = 0; k < 25; ++k)
    write_pattern(m.image(1), (k * 613 + 5) * block, block, 900 + k);
  const auto verified = [](const json& v) {
    return !v["verify"]["running"].get<bool>() && v["verify"]["total_bytes"].get<uint64_t>() > 0;
  };

  cli_result r = tandemctl({"mirror", "verify", "db", "-r", m.sock(1)});
  EXPECT_EQ(r.code, 1);  // on the secondary
  EXPECT_NE(r.err.find("verify runs on the primary"), std::string::npos) << r.err;
  r = tandemctl({"mirror", "verify", "db", "-r", m.sock(0)});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(m.wait_for(0, verified, 60s)) << m.volume(0).dump();
  json v0 = m.volume(0);
  EXPECT_EQ(v0["verify"]["differing_blocks"], 25u) << v0.dump();
  EXPECT_FALSE(v0["verify"]["interrupted"].get<bool>());
  EXPECT_EQ(v0["verify"]["first_differences"][0]["offset"], 5 * block);
  EXPECT_EQ(v0["dirty_bytes"], 0u);  // reported only
  r = tandemctl({"mirror", "status", "db", "-r", m.sock(0)});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("25 blocks differ, done"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("differs at 20480 (4096 bytes)"), std::string::npos) << r.out;

  const uint64_t sent0 = mirror_pair::counter(v0, "resync_bytes_sent");
  const uint64_t runs0 = mirror_pair::counter(v0, "verifies_completed");
  r = tandemctl({"mirror", "verify", "db", "--repair", "-r", m.sock(0)});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(m.wait_for(
      0,
      [&](const json& v) {
        return mirror_pair::counter(v, "verifies_completed") > runs0 && mirror_pair::in_sync(v) &&
               mirror_pair::counter(v, "resync_bytes_sent") > sent0;
      },
      120s))
      << m.volume(0).dump();
  ASSERT_TRUE(m.wait_for(1, synced, 60s)) << m.volume(1).dump();
  EXPECT_EQ(mirror_pair::counter(m.volume(0), "resync_bytes_sent") - sent0, 25 * block);
  for (int i = 0; i < 2; ++i)
    m.ok(i, {{"cmd", "detach"}, {"volume", "db"}});
  EXPECT_EQ(file_digest(m.image(0)), file_digest(m.image(1)));
}

// compression: igzip between two replicators: the initial full sync of a compressible disk
// travels compressed and both images end identical.
TEST(checksum_resync_netns, compressed_full_sync) {
  mirror_pair_options o;
  o.mib = 64;
  o.volume_extra = "compression: igzip";
  mirror_pair m(o);
  m.bring_up();  // zero-filled disks: the most compressible data there is
  ASSERT_TRUE(m.wait_for(1, mirror_pair::in_sync, 60s)) << m.volume(1).dump();
  const json v0 = m.volume(0);
  const uint64_t size = m.volume_bytes();
  EXPECT_EQ(mirror_pair::counter(v0, "resync_bytes_sent"), size) << v0.dump();
  EXPECT_EQ(mirror_pair::counter(v0, "resync_compressed_bytes"), size) << v0.dump();
  EXPECT_LT(mirror_pair::counter(v0, "resync_compressed_wire_bytes"), size / 100) << v0.dump();
  for (int i = 0; i < 2; ++i)
    m.ok(i, {{"cmd", "detach"}, {"volume", "db"}});
  EXPECT_EQ(file_digest(m.image(0)), file_digest(m.image(1)));
}

}  // namespace
}  // namespace tandem::lab
