// SPDX-License-Identifier: Apache-2.0
// tandemctl's command table: nested subcommands, each a function over its arguments and streams.
#pragma once

#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::ctl::cli {

// Exit codes, documented in docs/tandemctl.md.
enum exit_code : int {
  exit_ok = 0,           // success (for `config check`: the file is valid)
  exit_failed = 1,       // the command ran and failed (e.g. the configuration is invalid)
  exit_usage = 2,        // bad command line: unknown command or option, missing argument
  exit_unavailable = 3,  // tandemd could not be reached on its socket
};

// What every command gets: its streams and the global options.
struct command_context {
  std::ostream& out;
  std::ostream& err;
  std::string socket;  // tandemd's API socket (--socket, $TANDEM_SOCKET or the default)
};

// One entry of a command table: either a leaf with `run`, or a group with `subcommands`.
// `run` receives the arguments after the command's own name and returns an exit_code.
struct command {
  std::string_view name;
  std::string_view summary;  // one line for the parent's help
  int (*run)(const std::vector<std::string>& args, command_context& ctx) = nullptr;
  std::span<const command> subcommands = {};
};

// The tables, one per top-level command (each in its own source file).
std::span<const command> config_commands();
std::span<const command> mirror_commands();   // over tandem-replicator's socket
std::span<const command> cluster_commands();  // start, stop: over tandemd's socket
std::span<const command> group_commands();    // status, start, stop, move: over tandemd's socket
// Top-level leaves over tandemd's socket (cluster_commands.cc).
int run_status(const std::vector<std::string>& args, command_context& ctx);
int run_events(const std::vector<std::string>& args, command_context& ctx);
int run_config_reload(const std::vector<std::string>& args, command_context& ctx);

// The whole of tandemctl: `args` excludes the program name. Never throws.
int run_tandemctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace tandem::ctl::cli
