// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: any bytes as a cluster file (and as the replicator's file) through the whole
// loader and validator. A file that loads must write out (JSON and YAML) to text that loads to the
// same configuration, for the file and for every node's view, and must not differ from itself.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "control/config/cluster_config.h"
#include "control/config/config_json.h"
#include "control/config/mirrors_config.h"
#include "control/config/reload.h"

using namespace tandem::ctl::config;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

void check_round_trip(const cluster_config& cfg) {
  const nlohmann::ordered_json j = to_json(cfg);
  const cluster_load_result again = parse_cluster_text(j.dump(), "again.json");
  require(again.ok());
  require(to_json(again.config) == j);
  const cluster_load_result yaml = parse_cluster_text(to_yaml(j), "again.yaml");
  require(yaml.ok());
  require(to_json(yaml.config) == j);
  require(diff_for_reload(cfg, again.config).empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const cluster_load_result r = parse_cluster_text(text, "fuzz.yaml");
  for (const diagnostic& d : r.diag.all())
    require(!d.to_string().empty());
  require(r.ok() == (r.diag.error_count() == 0));
  if (r.ok()) {
    check_round_trip(r.config);
    for (const node_config& n : r.config.nodes) {
      const cluster_config e = effective_config(r.config, n.name);
      require(e.effective_node == n.name);
      (void)to_json(e);
    }
  }
  const mirrors_load_result m = parse_mirrors_text(text, "fuzz.yaml");
  if (m.ok()) {
    const std::string out = nlohmann::ordered_json{{"mirrors", to_json(m.config)}}.dump();
    const mirrors_load_result again = parse_mirrors_text(out, "again.json");
    require(again.ok());
    require(to_json(again.config) == to_json(m.config));
  }
  return 0;
}
