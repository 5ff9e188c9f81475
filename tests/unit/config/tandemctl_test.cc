// SPDX-License-Identifier: Apache-2.0
// tandemctl (control/cli): the built binary's exit codes and output for config check/show/diff,
// help and usage errors; the command table in-process.
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "control/cli/commands.h"
#include "control/exec/process.h"

namespace tandem::ctl::cli {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string example = std::string(TANDEM_EXAMPLES_DIR) + "/cluster.yaml";

run_result tandemctl(std::vector<std::string> args) {
  args.insert(args.begin(), TANDEMCTL_PATH);
  return run(std::move(args), 60s);
}

// A fresh directory for config files, removed with its contents at the end.
class tandemctl_files : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "tandemctl-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << std::generic_category().message(errno);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  fs::path dir_;
};

constexpr std::string_view bad_config = R"(cluster:
  name: demo
  secret_file: /etc/tandem/cluster.key
nodes:
  - name: a
    interconnects:
      - address: 10.0.0.1
  - name: b
    interconnects:
      - address: 10.0.0.300
heartbeat:
  intervall: 1s
quorum:
  mode: witness
  witness: {url: "http://10.0.0.9:7791"}
)";

TEST(tandemctl, check_valid_file_exits_0) {
  const run_result r = tandemctl({"config", "check", example});
  EXPECT_EQ(r.status.code, 0) << r.output;
  EXPECT_EQ(r.output, example + ": valid (2 nodes, 1 group, 3 monitors, 1 volume)\n");
}

TEST_F(tandemctl_files, check_invalid_file_exits_1_with_every_problem) {
  const std::string path = write("cluster.yaml", std::string(bad_config));
  const run_result r = tandemctl({"config", "check", path});
  EXPECT_EQ(r.status.code, 1) << r.output;
  EXPECT_EQ(r.output, path +
                          ":10:18: nodes[1].interconnects[0].address: \"10.0.0.300\" is not an "
                          "IP address\n" +
                          path +
                          ":12:3: heartbeat: unknown key \"intervall\" (did you mean "
                          "\"interval\"?)\n" +
                          path + ": invalid: 2 errors\n");
}

TEST_F(tandemctl_files, check_json_lists_problems) {
  const std::string path = write("cluster.yaml", std::string(bad_config));
  const run_result r = tandemctl({"config", "check", path, "--json"});
  EXPECT_EQ(r.status.code, 1) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["valid"], false);
  EXPECT_EQ(j["errors"], 2);
  ASSERT_EQ(j["problems"].size(), 2u);
  EXPECT_EQ(j["problems"][0]["line"], 10);
  EXPECT_EQ(j["problems"][0]["column"], 18);
  EXPECT_EQ(j["problems"][0]["path"], "nodes[1].interconnects[0].address");
  EXPECT_EQ(j["problems"][1]["message"], "unknown key \"intervall\" (did you mean \"interval\"?)");
}

TEST(tandemctl, check_with_node) {
  const run_result ok = tandemctl({"config", "check", example, "--node", "node-b"});
  EXPECT_EQ(ok.status.code, 0) << ok.output;
  EXPECT_EQ(ok.output, example +
                           ": valid for node node-b (2 nodes, 1 group, 3 monitors, 1 "
                           "volume)\n");
  const run_result bad = tandemctl({"config", "check", example, "--node", "node-c"});
  EXPECT_EQ(bad.status.code, 1) << bad.output;
  EXPECT_NE(bad.output.find("no node named \"node-c\" in " + example +
                            " (nodes: node-a, node-b) (did you mean \"node-a\"?)"),
            std::string::npos)
      << bad.output;
}

TEST(tandemctl, missing_file_exits_1) {
  const run_result r = tandemctl({"config", "check", "/nonexistent/cluster.yaml"});
  EXPECT_EQ(r.status.code, 1) << r.output;
  EXPECT_EQ(r.output,
            "/nonexistent/cluster.yaml: cannot read: No such file or directory\n"
            "/nonexistent/cluster.yaml: invalid: 1 error\n");
}

TEST(tandemctl, usage_errors_exit_2) {
  const run_result unknown = tandemctl({"confg", "check", example});
  EXPECT_EQ(unknown.status.code, 2) << unknown.output;
  EXPECT_EQ(unknown.output.rfind("tandemctl: unknown command \"confg\" (did you mean "
                                 "\"config\"?)\n",
                                 0),
            0u)
      << unknown.output;
  EXPECT_NE(unknown.output.find("Usage: tandemctl"), std::string::npos);

  const run_result sub = tandemctl({"config", "chek", example});
  EXPECT_EQ(sub.status.code, 2) << sub.output;
  EXPECT_NE(sub.output.find("tandemctl config: unknown command \"chek\" (did you mean "
                            "\"check\"?)"),
            std::string::npos)
      << sub.output;

  const run_result no_file = tandemctl({"config", "check"});
  EXPECT_EQ(no_file.status.code, 2) << no_file.output;
  EXPECT_NE(no_file.output.find("Usage: tandemctl config check FILE"), std::string::npos)
      << no_file.output;

  const run_result bad_option = tandemctl({"config", "check", example, "--nod", "a"});
  EXPECT_EQ(bad_option.status.code, 2) << bad_option.output;

  const run_result two_files = tandemctl({"config", "show", example, example});
  EXPECT_EQ(two_files.status.code, 2) << two_files.output;

  const run_result nothing = tandemctl({});
  EXPECT_EQ(nothing.status.code, 2) << nothing.output;
  EXPECT_NE(nothing.output.find("tandemctl: missing command"), std::string::npos);

  const run_result bad_global = tandemctl({"--bogus", "config"});
  EXPECT_EQ(bad_global.status.code, 2) << bad_global.output;
}

TEST(tandemctl, help) {
  const run_result top = tandemctl({"--help"});
  EXPECT_EQ(top.status.code, 0) << top.output;
  EXPECT_NE(top.output.find("Usage: tandemctl [--socket PATH] COMMAND [ARGS...]"),
            std::string::npos);
  EXPECT_NE(top.output.find("  config    check, show and compare cluster configuration files"),
            std::string::npos)
      << top.output;
  EXPECT_NE(top.output.find("Exit codes: 0 success"), std::string::npos);

  const run_result cfg = tandemctl({"config", "--help"});
  EXPECT_EQ(cfg.status.code, 0) << cfg.output;
  EXPECT_NE(cfg.output.find("Usage: tandemctl config COMMAND [ARGS...]"), std::string::npos);
  for (const char* c : {"  check ", "  show ", "  diff "})
    EXPECT_NE(cfg.output.find(c), std::string::npos) << c << "\n" << cfg.output;

  const run_result check = tandemctl({"config", "check", "--help"});
  EXPECT_EQ(check.status.code, 0) << check.output;
  EXPECT_NE(check.output.find("--node"), std::string::npos) << check.output;
  EXPECT_NE(check.output.find("--json"), std::string::npos) << check.output;

  const run_result version = tandemctl({"--version"});
  EXPECT_EQ(version.status.code, 0);
  EXPECT_EQ(version.output.rfind("tandemctl ", 0), 0u);
}

TEST(tandemctl, show_effective_config) {
  const run_result r = tandemctl({"config", "show", example, "--node", "node-b", "--json"});
  ASSERT_EQ(r.status.code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["quorum"]["partition_resolution"]["ping"], nlohmann::json::array({"10.0.1.254"}));
  EXPECT_EQ(j["groups"][0]["resources"][0]["params"]["frontend"], "kmod");  // a default

  const run_result yaml = tandemctl({"config", "show", example, "--node", "node-a"});
  ASSERT_EQ(yaml.status.code, 0) << yaml.output;
  EXPECT_EQ(yaml.output.rfind("# " + example + " as node node-a sees it", 0), 0u) << yaml.output;
  EXPECT_NE(yaml.output.find("\n    ping: [10.0.0.254]\n"), std::string::npos) << yaml.output;

  const run_result unknown = tandemctl({"config", "show", example, "--node", "x"});
  EXPECT_EQ(unknown.status.code, 1) << unknown.output;
}

TEST_F(tandemctl_files, show_output_is_a_valid_config) {
  const run_result shown = tandemctl({"config", "show", example});
  ASSERT_EQ(shown.status.code, 0) << shown.output;
  const std::string path = write("shown.yaml", shown.output);
  const run_result check = tandemctl({"config", "check", path});
  EXPECT_EQ(check.status.code, 0) << check.output;
}

TEST_F(tandemctl_files, show_invalid_exits_1) {
  const std::string path = write("cluster.yaml", std::string(bad_config));
  const run_result r = tandemctl({"config", "show", path});
  EXPECT_EQ(r.status.code, 1) << r.output;
  EXPECT_NE(r.output.find(path + ":10:18: nodes[1].interconnects[0].address"), std::string::npos);
}

TEST_F(tandemctl_files, diff_classifies_changes) {
  std::ifstream in(example);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string old_path = write("old.yaml", text);
  text.replace(text.find("interval: 1s"), 12, "interval: 500ms");
  text.replace(text.find("name: demo"), 10, "name: prod");
  const std::string new_path = write("new.yaml", text);
  const run_result r = tandemctl({"config", "diff", old_path, new_path});
  EXPECT_EQ(r.status.code, 0) << r.output;
  EXPECT_NE(r.output.find("daemon restart  cluster.name: demo -> prod\n"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("live            heartbeat.interval: 1s -> 500ms\n"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("a running daemon refuses this: it needs a restart"), std::string::npos);
  const run_result j = tandemctl({"config", "diff", old_path, new_path, "--json"});
  ASSERT_EQ(j.status.code, 0) << j.output;
  const auto parsed = nlohmann::json::parse(j.output);
  EXPECT_EQ(parsed["live_applicable"], false);
  EXPECT_EQ(parsed["changes"].size(), 2u);
  const run_result same = tandemctl({"config", "diff", old_path, old_path});
  EXPECT_EQ(same.output, "no changes\n");
}

// The command table in-process: the same entry point main() uses.
TEST(tandemctl, in_process_entry_point) {
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(run_tandemctl({"config", "check", example}, out, err), exit_ok);
  EXPECT_EQ(out.str(), example + ": valid (2 nodes, 1 group, 3 monitors, 1 volume)\n");
  EXPECT_EQ(err.str(), "");
  std::ostringstream out2;
  std::ostringstream err2;
  EXPECT_EQ(run_tandemctl({"frobnicate"}, out2, err2), exit_usage);
  EXPECT_EQ(err2.str().rfind("tandemctl: unknown command \"frobnicate\"", 0), 0u) << err2.str();
}

}  // namespace
}  // namespace tandem::ctl::cli
