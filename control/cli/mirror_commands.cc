// SPDX-License-Identifier: Apache-2.0
// `tandemctl mirror ...`: drives tandem-replicator's mirrored volumes over its control socket
// (docs/replicator.md has the JSON-lines requests each command sends).
#include <cstdlib>
#include <initializer_list>
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

#include "control/api/jsonl_socket.h"
#include "control/cli/args.h"
#include "control/cli/commands.h"

namespace tandem::ctl::cli {
namespace {

namespace po = boost::program_options;
using json = nlohmann::json;

constexpr std::string_view default_replicator_socket = "/run/tandem/replicator.sock";

std::string replicator_socket(const po::variables_map& vm) {
  if (vm.contains("replicator")) return vm["replicator"].as<std::string>();
  if (const char* env = std::getenv("TANDEM_REPLICATOR_SOCKET"); env != nullptr && *env != '\0')
    return env;
  return std::string(default_replicator_socket);
}

po::options_description common_options() {
  po::options_description d("Options");
  d.add_options()("replicator,r", po::value<std::string>()->value_name("PATH"),
                  "tandem-replicator's control socket (default $TANDEM_REPLICATOR_SOCKET, else "
                  "/run/tandem/replicator.sock)")("json", "print the replicator's JSON answer")(
      "help,h", "show this help");
  return d;
}

// Sends `request`; prints the answer (JSON with --json, else `ok_text` or the error).
int send(const po::variables_map& vm, const json& request, command_context& ctx,
         const std::string& ok_text, json* answer_out = nullptr) {
  json answer;
  try {
    api::jsonl_client client(replicator_socket(vm), std::chrono::seconds(60));
    answer = client.call(request);
  } catch (const api::unavailable& e) {
    ctx.err << "tandemctl: " << e.what() << "\n";
    return exit_unavailable;
  } catch (const std::exception& e) {
    ctx.err << "tandemctl: " << replicator_socket(vm) << ": " << e.what() << "\n";
    return exit_unavailable;
  }
  const bool ok = answer.value("ok", false);
  if (vm.contains("json")) {
    ctx.out << answer.dump(2) << "\n";
  } else if (!ok) {
    ctx.err << "tandemctl: " << answer.value("error", std::string("refused")) << "\n";
  } else if (!ok_text.empty()) {
    ctx.out << ok_text << "\n";
  }
  if (answer_out != nullptr) *answer_out = std::move(answer);
  return ok ? exit_ok : exit_failed;
}

std::string bytes(uint64_t b) {
  static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  std::ostringstream os;
  os << std::fixed << std::setprecision(u == 0 ? 0 : 1) << v << " " << units[u];
  return os.str();
}

void print_volume(std::ostream& os, const json& v) {
  os << v["name"].get<std::string>();
  // The replicator's polling thread that owns the volume (mirrors.lcores).
  if (v.contains("lcore")) os << " (lcore " << v["lcore"].get<unsigned>() << ")";
  os << ":\n";
  if (!v.value("attached", false)) {
    os << "  attached:   no\n  data:       " << v.value("data", "")
       << "\n  peer:       " << v.value("peer", "") << "\n";
    return;
  }
  os << "  role:       " << v.value("role", "") << "\n  disk:       " << v.value("disk", "")
     << "\n  connection: " << v.value("connection", "");
  if (const std::string r = v.value("reason", ""); !r.empty()) os << " (" << r << ")";
  os << "\n  peer:       " << v.value("peer", "");
  if (v.contains("peer_state")) {
    // What the peer said in the last session; only current while connected.
    const json& p = v["peer_state"];
    os << " (" << (v.value("connection", "") == "connected" ? "" : "last seen: ")
       << p.value("role", "") << ", " << p.value("disk", "") << ")";
  }
  os << "\n  dirty:      " << bytes(v.value("dirty_bytes", uint64_t{0})) << "\n";
  if (v.contains("split_brain"))
    os << "  split brain: " << v["split_brain"].get<std::string>() << "\n";
  if (v.contains("async")) {
    // What an async primary holds for the peer: the data a disaster now would lose.
    const json& a = v["async"];
    // Memory and history are shown apart: the queued bytes may be far more than the memory.
    os << "  async:      " << a.value("queued", uint64_t{0}) << " queued, "
       << bytes(a.value("queued_bytes", uint64_t{0})) << " ("
       << bytes(a.value("unsent_bytes", uint64_t{0})) << " unsent), lag "
       << a.value("lag_ms", uint64_t{0}) << " ms; memory "
       << bytes(a.value("memory_bytes", uint64_t{0})) << " of "
       << bytes(a.value("capacity_bytes", uint64_t{0}));
    if (a.value("history_capacity_bytes", uint64_t{0}) > 0) {
      os << ", history " << bytes(a.value("history_bytes", uint64_t{0})) << " of "
         << bytes(a.value("history_capacity_bytes", uint64_t{0}));
    }
    os << "\n";
  }
  const json& rs = v["resync"];
  const uint64_t total = rs.value("total_bytes", uint64_t{0});
  if (total > 0 && rs.value("done_bytes", uint64_t{0}) < total) {  // a resync under way
    const uint64_t done = rs.value("done_bytes", uint64_t{0});
    os << "  resync:     " << bytes(done) << " of " << bytes(total) << " (" << (done * 100 / total)
       << "%), " << bytes(rs.value("rate", uint64_t{0})) << "/s"
       << (rs.value("full", false) ? ", full" : "")
       << (rs.value("checksum", false) ? ", checksum" : "")
       << (rs.value("paused", false) ? ", paused" : "") << "\n";
  }
  if (v.contains("verify")) {
    const json& f = v["verify"];
    const uint64_t vtotal = f.value("total_bytes", uint64_t{0});
    if (vtotal > 0) {
      const uint64_t vdone = f.value("done_bytes", uint64_t{0});
      const char* how = f.value("running", false)
                            ? (f.value("repair", false) ? ", running, repair" : ", running")
                            : (f.value("interrupted", false) ? ", interrupted" : ", done");
      os << "  verify:     " << bytes(vdone) << " of " << bytes(vtotal) << " ("
         << (vdone * 100 / vtotal) << "%), " << f.value("differing_blocks", uint64_t{0})
         << " blocks differ" << how << "\n";
      for (const json& r : f["first_differences"])
        os << "              differs at " << r.value("offset", uint64_t{0}) << " ("
           << r.value("length", uint64_t{0}) << " bytes)\n";
    }
  }
  const json& t = v["transport"];
  os << "  transport:  rtt " << t.value("rtt_us", uint64_t{0}) << " us, "
     << t.value("retransmitted", uint64_t{0}) << " retransmitted"
     << (t.value("encrypted", false) ? ", AES-GCM" : ", integrity only (CRC32C)") << "\n";
  if (v.contains("fuse") && v["fuse"].value("published", false)) {
    const json& f = v["fuse"];
    os << "  file:       " << f.value("file", "") << " (open " << f.value("open", 0u) << ")";
    if (f.contains("loop") && f["loop"].is_string()) {
      os << ", " << f["loop"].get<std::string>();
    }
    os << "\n";
  }
}

int mirror_status(const std::vector<std::string>& args, command_context& ctx) {
  po::options_description hidden;
  hidden.add_options()("volume", po::value<std::string>());
  po::positional_options_description pos;
  pos.add("volume", 1);
  int code = exit_ok;
  const auto vm = parse_args(args, common_options(), hidden, pos,
                             "tandemctl mirror status [VOLUME] [--json]", ctx, &code);
  if (!vm) return code;
  json request = {{"cmd", "status"}};
  if (vm->contains("volume")) request["volume"] = (*vm)["volume"].as<std::string>();
  json answer;
  const int rc = send(*vm, request, ctx, "", &answer);
  if (rc != exit_ok || vm->contains("json")) return rc;
  ctx.out << "node " << answer.value("node", "") << "\n";
  for (const json& v : answer["volumes"])
    print_volume(ctx.out, v);
  return exit_ok;
}

struct command_flag {
  std::string_view name;  // empty: none
  std::string_view help;
};

// One volume command: `name VOLUME [--FLAG]...`, sent as {"cmd":name,"volume":..,FLAG:true}.
int volume_command(const std::vector<std::string>& args, command_context& ctx,
                   std::string_view name, std::initializer_list<command_flag> flags,
                   std::string_view done) {
  po::options_description options = common_options();
  std::string usage = "tandemctl mirror " + std::string(name) + " VOLUME";
  for (const command_flag& f : flags) {
    if (f.name.empty()) continue;
    options.add_options()(std::string(f.name).c_str(), std::string(f.help).c_str());
    usage += " [--" + std::string(f.name) + "]";
  }
  po::options_description hidden;
  hidden.add_options()("volume", po::value<std::string>()->required());
  po::positional_options_description pos;
  pos.add("volume", 1);
  int code = exit_ok;
  const auto vm = parse_args(args, options, hidden, pos, usage, ctx, &code);
  if (!vm) return code;
  const std::string volume = (*vm)["volume"].as<std::string>();
  json request = {{"cmd", std::string(name)}, {"volume", volume}};
  for (const command_flag& f : flags)
    if (!f.name.empty() && vm->contains(std::string(f.name))) request[std::string(f.name)] = true;
  return send(*vm, request, ctx, "volume " + volume + ": " + std::string(done));
}

#define TANDEM_MIRROR_COMMAND(fn, name, flag, flag_help, done)         \
  int fn(const std::vector<std::string>& args, command_context& ctx) { \
    return volume_command(args, ctx, name, {{flag, flag_help}}, done); \
  }
TANDEM_MIRROR_COMMAND(mirror_create, "create", "force",
                      "overwrite valid metadata (the volume's history is lost)", "metadata created")
TANDEM_MIRROR_COMMAND(mirror_attach, "attach", "", "", "attached")
TANDEM_MIRROR_COMMAND(mirror_detach, "detach", "", "", "detached")
TANDEM_MIRROR_COMMAND(mirror_promote, "promote", "force",
                      "promote even if this copy is not UpToDate (data may be stale)", "primary")
TANDEM_MIRROR_COMMAND(mirror_demote, "demote", "", "", "secondary")
TANDEM_MIRROR_COMMAND(mirror_connect, "connect", "", "", "connecting")
TANDEM_MIRROR_COMMAND(mirror_disconnect, "disconnect", "", "", "disconnected")
int mirror_resync(const std::vector<std::string>& args, command_context& ctx) {
  return volume_command(
      args, ctx, "resync",
      {{"full", "resynchronise the whole volume"},
       {"checksum", "compare 4 KiB block digests and send only the blocks that differ"}},
      "resync requested");
}
// `verify VOLUME [--repair] [--start OFFSET] | --stop`.
int mirror_verify(const std::vector<std::string>& args, command_context& ctx) {
  po::options_description options = common_options();
  options.add_options()("repair", "rewrite the differing blocks from this node once it ends")(
      "start", po::value<uint64_t>(), "first byte to compare (block-aligned; default 0)")(
      "stop", "end the running verify where it is");
  po::options_description hidden;
  hidden.add_options()("volume", po::value<std::string>()->required());
  po::positional_options_description pos;
  pos.add("volume", 1);
  int code = exit_ok;
  const auto vm = parse_args(args, options, hidden, pos,
                             "tandemctl mirror verify VOLUME [--repair] [--start OFFSET] | "
                             "tandemctl mirror verify VOLUME --stop",
                             ctx, &code);
  if (!vm) return code;
  const std::string volume = (*vm)["volume"].as<std::string>();
  json request = {{"cmd", "verify"}, {"volume", volume}};
  if (vm->contains("stop")) {
    if (vm->contains("repair") || vm->contains("start")) {
      ctx.err << "tandemctl mirror verify: --stop takes no other option\n";
      return exit_usage;
    }
    request["stop"] = true;
    return send(*vm, request, ctx, "volume " + volume + ": verify stopped");
  }
  if (vm->contains("repair")) request["repair"] = true;
  if (vm->contains("start")) request["start"] = (*vm)["start"].as<uint64_t>();
  return send(*vm, request, ctx,
              "volume " + volume + ": verify started (tandemctl mirror status " + volume +
                  " shows its progress)");
}

TANDEM_MIRROR_COMMAND(mirror_discard, "discard-changes", "", "",
                      "this node's changes since the split brain are discarded; it takes the "
                      "peer's data")
TANDEM_MIRROR_COMMAND(mirror_pause, "pause", "", "", "resync paused")
TANDEM_MIRROR_COMMAND(mirror_resume, "resume", "", "", "resync resumed")
#undef TANDEM_MIRROR_COMMAND

// `loop VOLUME` prints the device alone (for `dev=$(tandemctl mirror loop db)`).
int mirror_loop(const std::vector<std::string>& args, command_context& ctx, bool bind) {
  po::options_description options = common_options();
  po::options_description hidden;
  hidden.add_options()("volume", po::value<std::string>()->required());
  po::positional_options_description pos;
  pos.add("volume", 1);
  int code = exit_ok;
  const auto vm = parse_args(
      args, options, hidden, pos,
      std::string("tandemctl mirror ") + (bind ? "loop" : "unloop") + " VOLUME", ctx, &code);
  if (!vm) return code;
  const std::string volume = (*vm)["volume"].as<std::string>();
  json answer;
  const int rc =
      send(*vm, {{"cmd", bind ? "loop" : "unloop"}, {"volume", volume}}, ctx, "", &answer);
  if (rc != exit_ok || vm->contains("json")) return rc;
  if (bind) {
    ctx.out << answer.value("device", "") << "\n";
  } else if (answer["device"].is_string()) {
    ctx.out << "volume " << volume << ": " << answer["device"].get<std::string>()
            << " unbound from " << answer.value("file", "") << "\n";
  } else {
    ctx.out << "volume " << volume << ": no loop device is bound to " << answer.value("file", "")
            << "\n";
  }
  return exit_ok;
}

int mirror_loop_bind(const std::vector<std::string>& args, command_context& ctx) {
  return mirror_loop(args, ctx, true);
}
int mirror_loop_unbind(const std::vector<std::string>& args, command_context& ctx) {
  return mirror_loop(args, ctx, false);
}

}  // namespace

std::span<const command> mirror_commands() {
  static const command table[] = {
      {"status", "every volume's role, disk and connection state, resync progress", mirror_status},
      {"create", "initialise a volume's metadata (refuses valid metadata without --force)",
       mirror_create},
      {"attach", "open a volume and connect to its peer", mirror_attach},
      {"detach", "shut a volume down cleanly", mirror_detach},
      {"promote", "make this node's copy primary", mirror_promote},
      {"demote", "make this node's copy secondary", mirror_demote},
      {"connect", "connect to the peer", mirror_connect},
      {"disconnect", "leave the peer (writes are tracked for a bitmap resync)", mirror_disconnect},
      {"resync",
       "resynchronise from the peer's bitmap, or all of it with --full; --checksum sends only "
       "blocks that differ",
       mirror_resync},
      {"discard-changes",
       "resolve a split brain: discard this node's changes and take the peer's data",
       mirror_discard},
      {"verify",
       "compare every block with the peer's by digest and report the differences (--repair "
       "rewrites them from this node, --stop ends it)",
       mirror_verify},
      {"pause", "pause the resync", mirror_pause},
      {"resume", "resume the resync", mirror_resume},
      {"loop", "bind a loop device over the volume's FUSE file and print its name",
       mirror_loop_bind},
      {"unloop", "unbind the loop device over the volume's FUSE file", mirror_loop_unbind},
  };
  return table;
}

}  // namespace tandem::ctl::cli
