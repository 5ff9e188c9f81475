// SPDX-License-Identifier: Apache-2.0
// `tandemctl config check|show|diff`: validate, show one node's view, compare two files.
#include <optional>
#include <stdexcept>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "control/cli/args.h"
#include "control/cli/commands.h"
#include "control/config/cluster_config.h"
#include "control/config/config_json.h"
#include "control/config/reload.h"

namespace tandem::ctl::cli {
namespace {

namespace po = boost::program_options;
namespace cfg = tandem::ctl::config;
using json = nlohmann::ordered_json;

po::options_description node_json_options(std::string_view node_help) {
  po::options_description d("Options");
  d.add_options()("node,n", po::value<std::string>()->value_name("NAME"),
                  std::string(node_help).c_str())("json", "print JSON instead of text")(
      "help,h", "show this help");
  return d;
}

std::string plural(size_t n, std::string_view word) {
  return std::to_string(n) + " " + std::string(word) + (n == 1 ? "" : "s");
}

void print_problems(std::ostream& os, const std::vector<cfg::diagnostic>& problems) {
  for (const cfg::diagnostic& d : problems)
    os << d.to_string() << "\n";
}

// ---- config check -----------------------------------------------------------------------------

int config_check(const std::vector<std::string>& args, command_context& ctx) {
  po::options_description hidden;
  hidden.add_options()("file", po::value<std::string>()->required());
  po::positional_options_description pos;
  pos.add("file", 1);
  int code = exit_ok;
  auto vm =
      parse_args(args,
                 node_json_options("also check that this node exists (and name it in "
                                   "the summary)"),
                 hidden, pos, "tandemctl config check FILE [--node NAME] [--json]", ctx, &code);
  if (!vm) return code;
  const std::string file = (*vm)["file"].as<std::string>();
  cfg::cluster_load_result r = cfg::parse_cluster_file(file);
  std::vector<cfg::diagnostic> problems = r.diag.all();
  size_t errors = r.diag.error_count();
  const size_t warnings = r.diag.warning_count();
  std::string node;
  if (vm->contains("node")) {
    node = (*vm)["node"].as<std::string>();
    if (r.ok()) {
      try {
        (void)cfg::effective_config(r.config, node);
      } catch (const std::invalid_argument& e) {
        problems.push_back({cfg::severity::error, file, {}, e.what()});
        ++errors;
      }
    }
  }
  if (vm->contains("json")) {
    json j;
    j["file"] = file;
    if (!node.empty()) j["node"] = node;
    j["valid"] = errors == 0;
    j["errors"] = errors;
    j["warnings"] = warnings;
    j["problems"] = json::array();
    for (const cfg::diagnostic& d : problems)
      j["problems"].push_back(cfg::to_json(d));
    ctx.out << j.dump(2) << "\n";
  } else {
    print_problems(ctx.out, problems);
    if (errors == 0) {
      size_t volumes = r.config.mirrors.volumes.size();
      ctx.out << file << ": valid" << (node.empty() ? "" : " for node " + node) << " ("
              << plural(r.config.nodes.size(), "node") << ", "
              << plural(r.config.groups.size(), "group") << ", "
              << plural(r.config.monitors.size(), "monitor") << ", " << plural(volumes, "volume")
              << (warnings > 0 ? ", " + plural(warnings, "warning") : "") << ")\n";
    } else {
      ctx.out << file << ": invalid: " << plural(errors, "error")
              << (warnings > 0 ? ", " + plural(warnings, "warning") : "") << "\n";
    }
  }
  return errors == 0 ? exit_ok : exit_failed;
}

// ---- config show ------------------------------------------------------------------------------

// Loads a file for show/diff; prints its problems to stderr (warnings too) and returns nullopt
// when it is invalid.
std::optional<cfg::cluster_config> load_for_view(const std::string& file, command_context& ctx) {
  cfg::cluster_load_result r = cfg::parse_cluster_file(file);
  print_problems(ctx.err, r.diag.all());
  if (!r.ok()) {
    ctx.err << file << ": invalid: " << plural(r.diag.error_count(), "error")
            << " (tandemctl config check " << file << " lists them)\n";
    return std::nullopt;
  }
  return std::move(r.config);
}

int config_show(const std::vector<std::string>& args, command_context& ctx) {
  po::options_description hidden;
  hidden.add_options()("file", po::value<std::string>()->required());
  po::positional_options_description pos;
  pos.add("file", 1);
  int code = exit_ok;
  auto vm =
      parse_args(args,
                 node_json_options("show the configuration as this node sees it "
                                   "(its overrides and per-node values applied)"),
                 hidden, pos, "tandemctl config show FILE [--node NAME] [--json]", ctx, &code);
  if (!vm) return code;
  const std::string file = (*vm)["file"].as<std::string>();
  std::optional<cfg::cluster_config> c = load_for_view(file, ctx);
  if (!c) return exit_failed;
  std::string node;
  if (vm->contains("node")) {
    node = (*vm)["node"].as<std::string>();
    try {
      c = cfg::effective_config(*c, node);
    } catch (const std::invalid_argument& e) {
      ctx.err << file << ": " << e.what() << "\n";
      return exit_failed;
    }
  }
  const json j = cfg::to_json(*c);
  if (vm->contains("json")) {
    ctx.out << j.dump(2) << "\n";
  } else {
    ctx.out << "# " << file
            << (node.empty() ? " with every default filled in"
                             : " as node " + node +
                                   " sees it (overrides and per-node values "
                                   "applied, defaults filled in)")
            << "\n"
            << cfg::to_yaml(j);
  }
  return exit_ok;
}

// ---- config diff ------------------------------------------------------------------------------

int config_diff(const std::vector<std::string>& args, command_context& ctx) {
  po::options_description hidden;
  hidden.add_options()("files", po::value<std::vector<std::string>>()->required());
  po::positional_options_description pos;
  pos.add("files", 2);
  int code = exit_ok;
  auto vm =
      parse_args(args, node_json_options("compare the two files as this node sees them"), hidden,
                 pos, "tandemctl config diff OLD NEW [--node NAME] [--json]", ctx, &code);
  if (!vm) return code;
  const auto files = (*vm)["files"].as<std::vector<std::string>>();
  if (files.size() != 2) {
    ctx.err << "tandemctl: config diff needs two files, OLD and NEW\n";
    return exit_usage;
  }
  std::optional<cfg::cluster_config> before = load_for_view(files[0], ctx);
  std::optional<cfg::cluster_config> after = load_for_view(files[1], ctx);
  if (!before || !after) return exit_failed;
  if (vm->contains("node")) {
    const std::string node = (*vm)["node"].as<std::string>();
    try {
      before = cfg::effective_config(*before, node);
      after = cfg::effective_config(*after, node);
    } catch (const std::invalid_argument& e) {
      ctx.err << "tandemctl: " << e.what() << "\n";
      return exit_failed;
    }
  }
  const cfg::reload_plan plan = cfg::diff_for_reload(*before, *after);
  if (vm->contains("json")) {
    json j;
    j["live_applicable"] = plan.live_applicable();
    j["groups_to_restart"] = plan.groups_to_restart();
    j["changes"] = json::array();
    for (const cfg::config_change& c : plan.changes) {
      j["changes"].push_back({{"path", c.path},
                              {"before", c.before},
                              {"after", c.after},
                              {"kind", cfg::to_string(c.kind)},
                              {"reason", c.reason}});
    }
    ctx.out << j.dump(2) << "\n";
    return exit_ok;
  }
  if (plan.empty()) {
    ctx.out << "no changes\n";
    return exit_ok;
  }
  for (const cfg::config_change& c : plan.changes) {
    const std::string kind(cfg::to_string(c.kind));
    ctx.out << kind << std::string(16 - std::min<size_t>(kind.size(), 15), ' ') << c.path << ": "
            << (c.before.empty() ? "(none)" : c.before) << " -> "
            << (c.after.empty() ? "(none)" : c.after) << "\n"
            << std::string(16, ' ') << "  " << c.reason << "\n";
  }
  if (plan.live_applicable()) {
    ctx.out << "a running tandemd can apply this";
    const auto groups = plan.groups_to_restart();
    if (!groups.empty()) ctx.out << " (while group " << cfg::join_words(groups) << " is stopped)";
    ctx.out << "\n";
  } else {
    ctx.out << "a running daemon refuses this: it needs a restart\n";
  }
  return exit_ok;
}

}  // namespace

std::span<const command> config_commands() {
  static const command table[] = {
      {"check", "validate a cluster file; print every problem with file:line:column", config_check},
      {"show", "print a cluster file with defaults filled in, as one node sees it", config_show},
      {"diff", "compare two cluster files: what a running daemon can apply live", config_diff},
      {"reload", "make the running tandemd apply its changed file (live changes only)",
       run_config_reload},
  };
  return table;
}

}  // namespace tandem::ctl::cli
