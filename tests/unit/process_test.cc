// SPDX-License-Identifier: Apache-2.0
// tandem::ctl::process and run(): exit codes, signals, timeouts, exec errors, env, groups.
#include "control/exec/process.h"

#include <fcntl.h>
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

#include "tests/support/proc.h"

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

TEST(process, run_adds_the_given_environment_and_overrides_inherited_names) {
  ::setenv("TANDEM_RUN_INHERITED", "parent", 1);
  auto r = run({"sh", "-c", "echo \"$TANDEM_RUN_A|$TANDEM_RUN_INHERITED|$TANDEM_RUN_KEPT\""}, 10s,
               {}, {"TANDEM_RUN_A=one two", "TANDEM_RUN_INHERITED=child"});
  ::setenv("TANDEM_RUN_KEPT", "kept", 1);
  auto kept = run({"sh", "-c", "echo \"$TANDEM_RUN_KEPT\""}, 10s);
  ::unsetenv("TANDEM_RUN_INHERITED");
  ::unsetenv("TANDEM_RUN_KEPT");
  EXPECT_TRUE(r.status.ok()) << r.status.describe();
  EXPECT_EQ(r.output, "one two|child|\n");
  EXPECT_EQ(kept.output, "kept\n") << "without env the caller's environment is inherited";
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
  std::filesystem::remove(o.output_path);  // PIDs wrap: never read an older run's output
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
    gone = !test::running(grandchild);
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

TEST(process, large_input_to_a_child_that_never_reads_neither_blocks_nor_sigpipes) {
  spawn_options o;
  o.argv = {"true"};
  o.input = std::string(512 * 1024, 'x');
  auto p = process::spawn(o);
  auto st = p.wait(10s);
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->ok());
  o.input = std::string((1 << 20) + 1, 'x');
  EXPECT_THROW(process::spawn(o), std::invalid_argument);
}

TEST(process, input_arrives_whole) {
  spawn_options o;
  o.argv = {"wc", "-c"};
  o.input = std::string(300000, 'y');
  const auto path =
      std::filesystem::temp_directory_path() / ("tandem-proc-wc-" + std::to_string(getpid()));
  o.output_path = path.string();
  auto p = process::spawn(o);
  ASSERT_TRUE(p.wait(10s));
  std::ifstream in(path);
  long n = 0;
  in >> n;
  EXPECT_EQ(n, 300000);
  std::filesystem::remove(path);
}

TEST(process, path_from_the_childs_environment_is_used) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("tandem-proc-path-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const auto tool = dir / "tandem-only-here";
  std::ofstream(tool) << "#!/bin/sh\necho found-it\n";
  std::filesystem::permissions(tool, std::filesystem::perms::owner_all);
  spawn_options o;
  o.argv = {"tandem-only-here"};
  o.env = {"PATH=" + dir.string() + ":/usr/bin:/bin"};
  o.output_path = (dir / "out").string();
  auto p = process::spawn(o);
  auto st = p.wait(10s);
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->ok());
  std::ifstream in(dir / "out");
  std::string word;
  in >> word;
  EXPECT_EQ(word, "found-it");
  EXPECT_THROW(run({"tandem-only-here"}), std::system_error);  // not on our own PATH
  std::filesystem::remove_all(dir);
}

TEST(process, no_descriptor_or_ignored_signal_leaks_into_the_child) {
  const int leaked = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(leaked, 0);
  auto old = ::signal(SIGPIPE, SIG_IGN);
  auto r = run({"sh", "-c", "ls /proc/self/fd; grep SigIgn /proc/self/status"});
  ::signal(SIGPIPE, old);
  ::close(leaked);
  EXPECT_TRUE(r.status.ok()) << r.output;
  std::istringstream fds(r.output);
  std::string line;
  while (std::getline(fds, line) && line.rfind("SigIgn", 0) != 0) {
    // 0, 1, 2, and the descriptor ls itself has open on /proc/self/fd.
    if (!line.empty()) {
      EXPECT_LE(std::stoi(line), 3) << r.output;
    }
  }
  ASSERT_EQ(line.rfind("SigIgn", 0), 0u) << r.output;
  const unsigned long ignored =
      std::stoul(line.substr(line.find_first_of("0123456789abcdef", 7)), nullptr, 16);
  EXPECT_EQ(ignored & (1UL << (SIGPIPE - 1)), 0UL) << line;
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
