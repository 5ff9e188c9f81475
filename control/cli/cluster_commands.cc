// SPDX-License-Identifier: Apache-2.0
// `tandemctl status`, `tandemctl events`, `tandemctl cluster start|stop`: tandemd over its API
// socket (docs/tandemctl.md has the requests and the exit codes).
#include <chrono>
#include <iomanip>
#include <map>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "control/api/jsonl_socket.h"
#include "control/cli/args.h"
#include "control/cli/commands.h"

namespace tandem::ctl::cli {
namespace {

namespace po = boost::program_options;
using json = nlohmann::json;

po::options_description common_options(bool json_option = true) {
  po::options_description d("Options");
  if (json_option) d.add_options()("json", "print tandemd's JSON answer");
  d.add_options()("help,h", "show this help");
  return d;
}

int call(const json& request, command_context& ctx, json& answer, bool quiet_refusal = false) {
  return call_tandemd(request, ctx, answer, quiet_refusal);
}

std::string ago(const json& j, const char* key) {
  if (!j.contains(key)) return "never";
  const int64_t ms = j[key].get<int64_t>();
  std::ostringstream os;
  if (ms < 10'000) {
    os << ms << " ms ago";
  } else {
    os << ms / 1000 << " s ago";
  }
  return os.str();
}

void print_status(std::ostream& os, const json& s) {
  const json& q = s["quorum"];
  os << "cluster " << s.value("cluster", "") << ", node " << s.value("node", "") << " (id "
     << s.value("node_id", 0) << "): " << s.value("state", "") << "\n";
  os << "quorum:  " << (q.value("holds", false) ? "held" : "NOT held") << " ("
     << q.value("mode", "") << ": " << q.value("detail", "") << ")";
  if (q.contains("holder")) os << ", holder " << q.value("holder", "");
  if (q.value("partition", "off") != "off") os << ", partition " << q.value("partition", "");
  os << "\n";
  os << "heartbeat: every " << s["heartbeat"].value("interval_ms", 0) << " ms, timeout "
     << s["heartbeat"].value("timeout_ms", 0) << " ms\n\n";
  os << std::left << std::setw(16) << "NODE" << std::setw(10) << "STATE" << std::setw(10)
     << "QUORUM" << std::setw(16) << "LAST HEARD"
     << "LINKS\n";
  for (const json& n : s["nodes"]) {
    std::string name = n.value("name", "");
    if (n.value("self", false)) name += " *";
    std::string state = n.value("state", "");
    if (n.value("pending", false)) state += "?";
    std::string quorum = "-";
    if (n.contains("reported") && n.value("state", "") != "down")
      quorum = n["reported"].value("quorum", false) ? "yes" : "no";
    if (n.value("self", false)) quorum = q.value("holds", false) ? "yes" : "no";
    std::string links;
    for (const json& l : n["links"]) {
      if (!links.empty()) links += ", ";
      links += l.value("name", "") + " " + l.value("state", "");
      if (l.contains("rtt_us")) links += " (" + std::to_string(l["rtt_us"].get<int64_t>()) + " us)";
    }
    os << std::setw(16) << name << std::setw(10) << state << std::setw(10) << quorum
       << std::setw(16) << (n.value("self", false) ? "-" : ago(n, "last_heard_ms"))
       << (links.empty() ? "-" : links) << "\n";
  }
  if (s.contains("groups") && !s["groups"].empty()) {
    os << "\n"
       << std::setw(16) << "GROUP" << std::setw(24) << "RUNS ON" << std::setw(10) << "HERE"
       << "REASON\n";
    for (const json& g : s["groups"]) {
      std::string on = "-";
      if (g.contains("running_on")) {
        const std::string n = g["running_on"].get<std::string>();
        on = n + " (" + g["nodes"].value(n, "") + ")";
      }
      os << std::setw(16) << g.value("name", "") << std::setw(24) << on << std::setw(10)
         << g.value("state", "") << g.value("reason", "") << "\n";
    }
  }
  // Views that differ from this node's (an asymmetric partition shows here): what a node that
  // is up reports of the others, where it disagrees.
  std::map<std::string, std::string> mine;
  for (const json& n : s["nodes"])
    mine[n.value("name", "")] = n.value("self", false) ? "up" : n.value("state", "");
  bool header = false;
  for (const json& n : s["nodes"]) {
    if (n.value("self", false) || n.value("state", "") != "up" || !n.contains("reported")) continue;
    std::string diff;
    const json sees = n["reported"].value("sees", json::object());
    for (const auto& [other, state] : sees.items()) {
      if (other == n.value("name", "")) continue;
      const std::string theirs = state.get<std::string>();
      if (mine.count(other) && mine[other] != theirs)
        diff += (diff.empty() ? "" : ", ") + other + " " + theirs;
    }
    if (diff.empty()) continue;
    if (!header) os << "\nviews that differ from this node's:\n";
    header = true;
    os << "  " << n.value("name", "") << " sees " << diff << "\n";
  }
}

int status_command(const std::vector<std::string>& args, command_context& ctx) {
  int code = exit_ok;
  const auto vm =
      parse_args(args, common_options(), {}, {}, "tandemctl status [--json]", ctx, &code);
  if (!vm) return code;
  json answer;
  const int rc = call({{"cmd", "status"}}, ctx, answer);
  if (rc != exit_ok) return rc;
  if (vm->contains("json")) {
    ctx.out << answer.dump(2) << "\n";
  } else {
    print_status(ctx.out, answer);
  }
  return exit_ok;
}

void print_event(std::ostream& os, const json& e) {
  os << e.value("time", "") << "  " << std::left << std::setw(8) << e.value("severity", "") << " "
     << std::setw(28) << e.value("name", "") + " (" + std::to_string(e.value("id", 0)) + ")"
     << " " << e.value("message", "") << "\n";
}

int events_command(const std::vector<std::string>& args, command_context& ctx) {
  po::options_description options = common_options();
  options.add_options()("since", po::value<uint64_t>()->value_name("SERIAL"),
                        "only events after this serial number")(
      "limit,n", po::value<size_t>()->value_name("N")->default_value(50),
      "at most the newest N events (without --since)")(
      "severity", po::value<std::string>()->value_name("LEVEL"),
      "only events at least this severe: info, warning, error")(
      "follow,f", "keep printing new events until interrupted");
  int code = exit_ok;
  const auto vm = parse_args(args, options, {}, {},
                             "tandemctl events [--since SERIAL] [-n N] [--severity LEVEL] "
                             "[--follow] [--json]",
                             ctx, &code);
  if (!vm) return code;
  int min_level = 0;
  if (vm->contains("severity")) {
    const std::string s = (*vm)["severity"].as<std::string>();
    if (s == "info") {
      min_level = 0;
    } else if (s == "warning") {
      min_level = 1;
    } else if (s == "error") {
      min_level = 2;
    } else {
      ctx.err << "tandemctl: --severity " << s << ": expected info, warning or error\n";
      return exit_usage;
    }
  }
  auto level_of = [](const std::string& s) { return s == "error" ? 2 : s == "warning" ? 1 : 0; };
  uint64_t since = 0;
  const size_t limit = (*vm)["limit"].as<size_t>();
  json answer;
  if (vm->contains("since")) {
    since = (*vm)["since"].as<uint64_t>();
  } else {
    // The newest `limit`: ask where the log ends first.
    const int rc = call({{"cmd", "events"}, {"limit", 0}}, ctx, answer);
    if (rc != exit_ok) return rc;
    const uint64_t last = answer.value("last", uint64_t{0});
    since = last > limit ? last - limit : 0;
  }
  const bool follow = vm->contains("follow");
  const bool as_json = vm->contains("json");
  for (;;) {
    const int rc = call({{"cmd", "events"}, {"since", since}, {"limit", 1000}}, ctx, answer);
    if (rc != exit_ok) return rc;
    // tandemd restarted (serials begin at 1 again): follow the new run from its start.
    if (answer.value("last", uint64_t{0}) < since) since = 0;
    json shown = json::array();
    for (const json& e : answer["events"]) {
      since = std::max(since, e.value("serial", uint64_t{0}));
      if (level_of(e.value("severity", "")) < min_level) continue;
      if (as_json && !follow) {
        shown.push_back(e);
      } else if (as_json) {
        ctx.out << e.dump() << "\n";
      } else {
        print_event(ctx.out, e);
      }
    }
    if (as_json && !follow) ctx.out << shown.dump(2) << "\n";
    ctx.out.flush();
    if (!follow) return exit_ok;
    if (answer["events"].size() < 1000) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

int cluster_change(const std::vector<std::string>& args, command_context& ctx, const char* cmd,
                   const char* usage) {
  int code = exit_ok;
  po::options_description opts = common_options();
  const bool stopping = std::string_view(cmd) == "cluster_stop";
  if (stopping) {
    opts.add_options()("no-wait", "return at once; the node leaves once its groups are stopped")(
        "timeout", po::value<unsigned>()->default_value(600),
        "seconds to wait for the groups to stop");
  }
  const auto vm = parse_args(args, opts, {}, {}, usage, ctx, &code);
  if (!vm) return code;
  json answer;
  int rc = call({{"cmd", cmd}}, ctx, answer);
  if (rc != exit_ok) return rc;
  if (stopping && answer.value("state", "") == "stopping" && !vm->contains("no-wait")) {
    // The node stops its groups before it leaves: wait for that.
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds((*vm)["timeout"].as<unsigned>());
    json st;
    while (std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      rc = call({{"cmd", "status"}}, ctx, st);
      if (rc != exit_ok) return rc;
      if (st.value("state", "") == "stopped") break;
    }
    if (st.value("state", "") != "stopped") {
      ctx.err << "tandemctl: the node is still stopping its groups after "
              << (*vm)["timeout"].as<unsigned>() << " s (see tandemctl group status)\n";
      return exit_failed;
    }
    answer["state"] = "stopped";
  }
  if (vm->contains("json")) {
    ctx.out << answer.dump(2) << "\n";
  } else {
    ctx.out << "node is " << answer.value("state", "")
            << (answer.value("changed", false) ? "" : " (it already was)") << "\n";
  }
  return exit_ok;
}

int cluster_start(const std::vector<std::string>& args, command_context& ctx) {
  return cluster_change(args, ctx, "cluster_start", "tandemctl cluster start [--json]");
}

int cluster_stop(const std::vector<std::string>& args, command_context& ctx) {
  return cluster_change(args, ctx, "cluster_stop",
                        "tandemctl cluster stop [--no-wait] [--timeout SECS] [--json]");
}

}  // namespace

int run_config_reload(const std::vector<std::string>& args, command_context& ctx) {
  int code = exit_ok;
  const auto vm =
      parse_args(args, common_options(), {}, {}, "tandemctl config reload [--json]", ctx, &code);
  if (!vm) return code;
  json answer;
  const bool as_json = vm->contains("json");
  const int rc = call({{"cmd", "reload"}}, ctx, answer, as_json);
  if (rc == exit_unavailable) return rc;
  if (as_json) {
    ctx.out << answer.dump(2) << "\n";
    return rc;
  }
  if (rc != exit_ok) return rc;
  if (!answer.value("changed", false)) {
    ctx.out << "nothing changed\n";
    return exit_ok;
  }
  ctx.out << "reloaded (config digest " << answer.value("config_digest", "") << "):\n";
  for (const json& c : answer["changes"])
    ctx.out << "  " << c.value("path", "") << ": " << c.value("reason", "") << "\n";
  return exit_ok;
}

int run_status(const std::vector<std::string>& args, command_context& ctx) {
  return status_command(args, ctx);
}

int run_events(const std::vector<std::string>& args, command_context& ctx) {
  return events_command(args, ctx);
}

std::span<const command> cluster_commands() {
  static const command table[] = {
      {"start", "this node joins the cluster (heartbeats, quorum)", cluster_start},
      {"stop", "this node stops its groups and leaves the cluster (peers see it at once)",
       cluster_stop},
  };
  return table;
}

}  // namespace tandem::ctl::cli
