// SPDX-License-Identifier: Apache-2.0
// tandemctl's global options, help and dispatch through the command tables.
#include <cstdlib>
#include <exception>
#include <sstream>

#include <boost/program_options.hpp>

#include "control/cli/commands.h"
#include "control/config/diagnostics.h"

#ifndef TANDEM_VERSION
#define TANDEM_VERSION "unknown"
#endif

namespace tandem::ctl::cli {
namespace {

namespace po = boost::program_options;

constexpr std::string_view default_socket = "/run/tandem/tandemd.sock";

// Top-level commands: one line each, with their table in their own source file.
std::span<const command> top_level() {
  static const command table[] = {
      {"status", "the cluster as this node sees it: nodes, interconnects, quorum", run_status},
      {"events", "tandemd's events (heartbeat, quorum, ...), newest last; --follow", run_events},
      {"cluster", "this node joins or leaves the cluster: start, stop", nullptr,
       cluster_commands()},
      {"group", "failover groups: status, start, stop, move", nullptr, group_commands()},
      {"config", "check, show and compare cluster configuration files", nullptr, config_commands()},
      {"mirror", "mirrored volumes: status, promote, demote, connect, resync, ...", nullptr,
       mirror_commands()},
  };
  return table;
}

po::options_description global_options() {
  po::options_description d("Global options");
  d.add_options()("help,h", "show this help")("version", "print the version")(
      "socket,s", po::value<std::string>()->value_name("PATH"),
      "tandemd's API socket (default $TANDEM_SOCKET, else /run/tandem/tandemd.sock)");
  return d;
}

void list_commands(std::ostream& os, std::span<const command> table) {
  size_t width = 0;
  for (const command& c : table)
    width = std::max(width, c.name.size());
  for (const command& c : table)
    os << "  " << c.name << std::string(width - c.name.size() + 3, ' ') << c.summary << "\n";
}

void top_usage(std::ostream& os) {
  os << "Usage: tandemctl [--socket PATH] COMMAND [ARGS...]\n\n"
        "Drives a tandem failover cluster.\n\nCommands:\n";
  list_commands(os, top_level());
  os << "\n"
     << global_options() << "\n"
     << "Run 'tandemctl COMMAND --help' for a command's subcommands and options.\n"
        "Exit codes: 0 success, 1 failure (e.g. an invalid configuration), 2 usage error,\n"
        "3 tandemd not reachable.\n";
}

void group_usage(std::ostream& os, const std::string& prefix, const command& group) {
  os << "Usage: " << prefix << " COMMAND [ARGS...]\n\n" << group.summary << "\n\nCommands:\n";
  list_commands(os, group.subcommands);
  os << "\nRun '" << prefix << " COMMAND --help' for a command's options.\n";
}

std::vector<std::string> names_of(std::span<const command> table) {
  std::vector<std::string> v;
  for (const command& c : table)
    v.emplace_back(c.name);
  return v;
}

int dispatch(std::span<const command> table, const std::string& prefix,
             const std::vector<std::string>& args, command_context& ctx,
             void (*usage)(std::ostream&, const std::string&, const command&),
             const command* parent) {
  auto print_usage = [&](std::ostream& os) {
    if (parent != nullptr) {
      usage(os, prefix, *parent);
    } else {
      top_usage(os);
    }
  };
  if (args.empty()) {
    ctx.err << prefix << ": missing command\n\n";
    print_usage(ctx.err);
    return exit_usage;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_usage(ctx.out);
    return exit_ok;
  }
  for (const command& c : table) {
    if (c.name != args[0]) continue;
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    const std::string name = prefix + " " + std::string(c.name);
    if (c.run != nullptr) return c.run(rest, ctx);
    return dispatch(c.subcommands, name, rest, ctx, usage, &c);
  }
  ctx.err << prefix << ": unknown command " << config::in_quotes(args[0])
          << config::did_you_mean(args[0], names_of(table)) << "\n\n";
  print_usage(ctx.err);
  return exit_usage;
}

}  // namespace

int run_tandemctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  try {
    // Global options come before the command; everything from the command on is its own.
    size_t first = 0;
    while (first < args.size() && args[first].starts_with("-") && args[first] != "-") {
      if ((args[first] == "--socket" || args[first] == "-s") && first + 1 < args.size()) ++first;
      ++first;
    }
    const std::vector<std::string> globals(args.begin(), args.begin() + static_cast<long>(first));
    const std::vector<std::string> rest(args.begin() + static_cast<long>(first), args.end());
    po::variables_map vm;
    try {
      const int style =
          po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
      po::store(po::command_line_parser(globals).options(global_options()).style(style).run(), vm);
      po::notify(vm);
    } catch (const po::error& e) {
      err << "tandemctl: " << e.what() << "\n\n";
      top_usage(err);
      return exit_usage;
    }
    if (vm.contains("help")) {
      top_usage(out);
      return exit_ok;
    }
    if (vm.contains("version")) {
      out << "tandemctl " << TANDEM_VERSION << "\n";
      return exit_ok;
    }
    command_context ctx{out, err, std::string(default_socket)};
    if (const char* env = std::getenv("TANDEM_SOCKET"); env != nullptr && *env != '\0')
      ctx.socket = env;
    if (vm.contains("socket")) ctx.socket = vm["socket"].as<std::string>();
    return dispatch(top_level(), "tandemctl", rest, ctx, group_usage, nullptr);
  } catch (const std::exception& e) {
    err << "tandemctl: " << e.what() << "\n";
    return exit_failed;
  }
}

}  // namespace tandem::ctl::cli
