// SPDX-License-Identifier: Apache-2.0
// tandem::ctl::process and run(): exit codes, signals, timeouts, exec errors, env, groups.
#include "control/exec/process.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <thread>

#include <gtest/gtest.h>

namespace tandem::ctl {
namespace {

using namespace std::chrono_literals;

TEST(process, run_reports_exit_code_and_output) {
  auto r = run({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.status.code, 3);
  EXPECT_EQ(r.status.signal, 0);
  EXPECT_FALSE(r.status.ok());
  EXPECT_NE(r.output.find("out"), std::string::npos);
  EXPECT_NE(r.output.find("err"), std::string::npos);
  EXPECT_EQ(r.status.describe(), "exited with 3");
}

TEST(process, run_kills_on_timeout_and_says_so) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run({"sleep", "30"}, 200ms);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.status.signal, SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

TEST(process, exec_failure_is_an_exception_with_errno) {
  try {
    run({"/nonexistent/tandem-binary"});
    FAIL() << "expected an exception";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tandem-binary"), std::string::npos);
  }
  EXPECT_THROW(run({}), std::invalid_argument);
}

TEST(process, run_checked_throws_with_command_and_output) {
  EXPECT_EQ(run_checked({"echo", "hi"}), "hi\n");
  try {
    run_checked({"sh", "-c", "echo boom; exit 2"});
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("exited with 2"), std::string::npos) << what;
    EXPECT_NE(what.find("boom"), std::string::npos) << what;
  }
}

TEST(process, spawn_passes_env_input_cwd_and_logs_to_file) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("tandem-proc-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  spawn_options o;
  o.argv = {"sh", "-c", "read line; echo \"$line $TANDEM_X $(pwd)\""};
  o.env = {"TANDEM_X=forty-two"};
  o.input = "hello\n";
  o.cwd = dir.string();
  o.output_path = (dir / "out.log").string();
  auto p = process::spawn(o);
  auto st = p.wait(10s);
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->ok()) << st->describe();
  std::ifstream in(o.output_path);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "hello forty-two " + dir.string() + "\n");
  std::filesystem::remove_all(dir);
}

TEST(process, stop_escalates_to_sigkill_and_takes_the_group) {
  spawn_options o;
  // The shell ignores SIGTERM and leaves a grandchild in its process group.
  o.argv = {"sh", "-c", "trap '' TERM; sleep 300 & echo $! ; wait"};
  const auto dir = std::filesystem::temp_directory_path();
  o.output_path = (dir / ("tandem-proc-grp-" + std::to_string(getpid()))).string();
  auto p = process::spawn(o);
  EXPECT_TRUE(p.running());
  pid_t grandchild = -1;
  for (int i = 0; i < 100 && grandchild <= 0; ++i) {
    std::ifstream in(o.output_path);
    in >> grandchild;
    if (grandchild <= 0) std::this_thread::sleep_for(20ms);
  }
  ASSERT_GT(grandchild, 0);
  const auto st = p.stop(SIGTERM, 300ms);
  EXPECT_EQ(st.signal, SIGKILL);
  EXPECT_FALSE(p.running());
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = ::kill(grandchild, 0) != 0;
    if (!gone) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(gone) << "grandchild " << grandchild << " survived";
  std::filesystem::remove(o.output_path);
}

TEST(process, wait_times_out_without_stopping) {
  spawn_options o;
  o.argv = {"sleep", "5"};
  auto p = process::spawn(o);
  EXPECT_FALSE(p.wait(50ms).has_value());
  EXPECT_TRUE(p.running());
  p.signal(SIGKILL);
  auto st = p.wait(5s);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->signal, SIGKILL);
  EXPECT_EQ(st->describe().rfind("killed by signal 9", 0), 0u);
}

TEST(process, unknown_netns_is_a_clear_error) {
  try {
    run({"true"}, 5s, "tandem-no-such-netns");
    FAIL() << "expected an exception";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("tandem-no-such-netns"), std::string::npos);
  }
}

}  // namespace
}  // namespace tandem::ctl
