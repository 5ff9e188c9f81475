// SPDX-License-Identifier: Apache-2.0
// `tandemctl group status|start|stop|move`: failover groups over tandemd's API socket. Commands
// are recorded cluster-wide by the local tandemd; by default tandemctl then waits until the
// cluster, as this node sees it, has done what was asked (docs/tandemctl.md).
#include <chrono>
#include <iomanip>
#include <thread>

#include <nlohmann/json.hpp>

#include "control/cli/args.h"
#include "control/cli/commands.h"

namespace tandem::ctl::cli {
namespace {

namespace po = boost::program_options;
using json = nlohmann::json;

bool running_state(const std::string& s) {
  return s == "starting" || s == "online" || s == "stopping";
}

// The group's state across the cluster: where it runs, or offline / failed.
std::string cluster_state(const json& g) {
  if (g.contains("running_on")) {
    const std::string on = g["running_on"].get<std::string>();
    return g["nodes"].value(on, "") + " on " + on;
  }
  bool all_failed = !g["nodes"].empty();
  for (const auto& [node, state] : g["nodes"].items())
    all_failed = all_failed && (state == "failed" || state == "down");
  return all_failed ? "failed" : "offline";
}

void print_groups(std::ostream& os, const json& answer, const std::string& only) {
  os << std::left << std::setw(16) << "GROUP" << std::setw(24) << "CLUSTER" << std::setw(10)
     << "HERE" << std::setw(14) << "COMMAND"
     << "REASON\n";
  for (const json& g : answer["groups"]) {
    if (!only.empty() && g.value("name", "") != only) continue;
    std::string intent = g.value("intent", "none");
    if (g.contains("intent_target")) intent += " " + g["intent_target"].get<std::string>();
    if (intent == "none") intent = "-";
    os << std::setw(16) << g.value("name", "") << std::setw(24) << cluster_state(g) << std::setw(10)
       << g.value("state", "") << std::setw(14) << intent << g.value("reason", "") << "\n";
  }
  if (only.empty()) return;
  for (const json& g : answer["groups"]) {
    if (g.value("name", "") != only) continue;
    os << "\nnodes:";
    for (const auto& [node, state] : g["nodes"].items())
      os << "  " << node << " " << state.get<std::string>();
    os << "\nfailovers: " << g.value("failovers", 0) << ", failback " << g.value("failback", "")
       << ", autostart " << (g.value("autostart", true) ? "yes" : "no") << "\n";
    if (g.contains("error")) os << "last error: " << g["error"].get<std::string>() << "\n";
    if (g.contains("unavailable"))
      os << "cannot run here: " << g["unavailable"].get<std::string>() << "\n";
    os << "\n"
       << std::setw(16) << "RESOURCE" << std::setw(12) << "TYPE" << std::setw(10) << "STATE"
       << "DETAILS\n";
    for (const json& r : g["resources"]) {
      std::string details;
      if (r.contains("details")) {
        for (const auto& [k, v] : r["details"].items()) {
          if (v.is_string() && v.get<std::string>().empty()) continue;
          details += (details.empty() ? "" : ", ") + k + " " +
                     (v.is_string() ? v.get<std::string>() : v.dump());
        }
      }
      if (r.contains("error"))
        details += (details.empty() ? "" : "; ") + r["error"].get<std::string>();
      os << std::setw(16) << r.value("name", "") << std::setw(12) << r.value("type", "")
         << std::setw(10) << r.value("state", "") << details << "\n";
    }
    if (!g["monitors"].empty()) {
      os << "\n"
         << std::setw(16) << "MONITOR" << std::setw(20) << "TYPE" << std::setw(10) << "HEALTHY"
         << "LAST\n";
      for (const json& m : g["monitors"]) {
        std::string last = m.value("message", "");
        if (m.contains("unavailable")) last = m["unavailable"].get<std::string>();
        os << std::setw(16) << m.value("name", "") << std::setw(20) << m.value("type", "")
           << std::setw(10) << (m.value("healthy", true) ? "yes" : "NO") << last << "\n";
      }
    }
  }
}

const json* find_group(const json& answer, const std::string& name) {
  for (const json& g : answer["groups"])
    if (g.value("name", "") == name) return &g;
  return nullptr;
}

int status_command(const std::vector<std::string>& args, command_context& ctx) {
  po::options_description opts("Options");
  opts.add_options()("json", "print tandemd's JSON answer")("help,h", "show this help");
  po::options_description hidden;
  hidden.add_options()("group", po::value<std::string>());
  po::positional_options_description pos;
  pos.add("group", 1);
  int code = exit_ok;
  const auto vm =
      parse_args(args, opts, hidden, pos, "tandemctl group status [GROUP] [--json]", ctx, &code);
  if (!vm) return code;
  json answer;
  const int rc = call_tandemd({{"cmd", "group_status"}}, ctx, answer);
  if (rc != exit_ok) return rc;
  const std::string only = vm->contains("group") ? (*vm)["group"].as<std::string>() : "";
  if (!only.empty() && find_group(answer, only) == nullptr) {
    ctx.err << "tandemctl: no group named '" << only << "'\n";
    return exit_failed;
  }
  if (vm->contains("json")) {
    if (!only.empty()) {
      ctx.out << find_group(answer, only)->dump(2) << "\n";
    } else {
      ctx.out << answer.dump(2) << "\n";
    }
    return exit_ok;
  }
  print_groups(ctx.out, answer, only);
  return exit_ok;
}

// Whether `g` has reached what `cmd` asked; sets `failed` when it cannot get there any more.
bool reached(const json& g, const std::string& cmd, const std::string& target, bool& failed,
             std::string& why) {
  const json& nodes = g["nodes"];
  if (cmd == "stop") {
    for (const auto& [node, state] : nodes.items())
      if (running_state(state.get<std::string>())) return false;
    return true;
  }
  if (cmd == "move") {
    if (nodes.value(target, "") == "online") return true;
    if (nodes.value(target, "") == "failed") {
      failed = true;
      why = g.value("error", "it failed to start on " + target);
    }
    return false;
  }
  for (const auto& [node, state] : nodes.items())
    if (state == "online") return true;
  bool all_failed = !nodes.empty();
  for (const auto& [node, state] : nodes.items())
    all_failed = all_failed && (state == "failed" || state == "down");
  if (all_failed) {
    failed = true;
    why = "it failed on every node that could run it" +
          (g.contains("error") ? " (here: " + g["error"].get<std::string>() + ")" : "");
  }
  return false;
}

int change_command(const std::vector<std::string>& args, command_context& ctx,
                   const std::string& cmd) {
  po::options_description opts("Options");
  opts.add_options()("no-wait", "return once the command is recorded")(
      "timeout", po::value<unsigned>()->default_value(300), "seconds to wait for the result")(
      "json", "print tandemd's JSON answer")("help,h", "show this help");
  if (cmd != "move") opts.add_options()("all", "every group");
  po::options_description hidden;
  hidden.add_options()("group", po::value<std::string>())("node", po::value<std::string>());
  po::positional_options_description pos;
  pos.add("group", 1);
  if (cmd == "move") pos.add("node", 1);
  const std::string usage =
      cmd == "move"
          ? "tandemctl group move GROUP [NODE] [--no-wait] [--timeout SECS] [--json]"
          : "tandemctl group " + cmd + " GROUP|--all [--no-wait] [--timeout SECS] [--json]";
  int code = exit_ok;
  const auto vm = parse_args(args, opts, hidden, pos, usage, ctx, &code);
  if (!vm) return code;
  const bool all = vm->contains("all");
  if (all == vm->contains("group")) {
    ctx.err << "tandemctl: name a group" << (cmd == "move" ? "" : " or give --all")
            << "\nUsage: " << usage << "\n";
    return exit_usage;
  }
  json request = {{"cmd", "group_" + cmd}};
  if (!all) request["group"] = (*vm)["group"].as<std::string>();
  if (vm->contains("node")) request["node"] = (*vm)["node"].as<std::string>();
  json answer;
  int rc = call_tandemd(request, ctx, answer);
  if (rc != exit_ok) return rc;
  const std::string target = answer.value("target", "");
  if (!vm->contains("no-wait")) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds((*vm)["timeout"].as<unsigned>());
    std::vector<std::string> pending;
    for (const json& g : answer["groups"])
      pending.push_back(g.value("group", ""));
    json st;
    while (!pending.empty()) {
      if (std::chrono::steady_clock::now() >= deadline) {
        ctx.err << "tandemctl: timed out after " << (*vm)["timeout"].as<unsigned>()
                << " s waiting for group(s):";
        for (const std::string& p : pending)
          ctx.err << " " << p;
        ctx.err << " (see tandemctl group status)\n";
        return exit_failed;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      rc = call_tandemd({{"cmd", "group_status"}}, ctx, st);
      if (rc != exit_ok) return rc;
      for (auto it = pending.begin(); it != pending.end();) {
        const json* g = find_group(st, *it);
        bool failed = false;
        std::string why;
        if (g == nullptr || reached(*g, cmd, target, failed, why)) {
          it = pending.erase(it);
          continue;
        }
        if (failed) {
          ctx.err << "tandemctl: group " << *it << ": " << why << "\n";
          return exit_failed;
        }
        ++it;
      }
    }
    answer["status"] = st;
  }
  if (vm->contains("json")) {
    ctx.out << answer.dump(2) << "\n";
    return exit_ok;
  }
  for (const json& g : answer["groups"]) {
    const std::string name = g.value("group", "");
    ctx.out << "group " << name << ": ";
    if (vm->contains("no-wait")) {
      ctx.out << cmd << " recorded (seq " << g.value("seq", 0) << ")\n";
      continue;
    }
    const json* s = answer.contains("status") ? find_group(answer["status"], name) : nullptr;
    ctx.out << (s != nullptr ? cluster_state(*s) : "done") << "\n";
  }
  return exit_ok;
}

int start_command(const std::vector<std::string>& args, command_context& ctx) {
  return change_command(args, ctx, "start");
}
int stop_command(const std::vector<std::string>& args, command_context& ctx) {
  return change_command(args, ctx, "stop");
}
int move_command(const std::vector<std::string>& args, command_context& ctx) {
  return change_command(args, ctx, "move");
}

}  // namespace

std::span<const command> group_commands() {
  static const command table[] = {
      {"status", "failover groups: where each runs, its resources and monitors", status_command},
      {"start", "start a group (clears its failures) and wait until it is online", start_command},
      {"stop", "stop a group everywhere and wait until it is offline", stop_command},
      {"move", "move a group to a node (default: the next eligible one)", move_command},
  };
  return table;
}

}  // namespace tandem::ctl::cli
