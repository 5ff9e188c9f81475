// SPDX-License-Identifier: Apache-2.0
// The cluster file: one YAML file for every node, validated as a whole, with per-node overrides.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/config/diagnostics.h"
#include "control/config/groups_config.h"
#include "control/config/mirrors_config.h"

namespace tandem::ctl::config {

inline constexpr uint16_t default_heartbeat_port = 7789;
inline constexpr uint16_t default_replica_port = 7790;
inline constexpr uint16_t default_api_port = 7788;
inline constexpr std::chrono::milliseconds min_heartbeat_interval{100};
inline constexpr std::chrono::milliseconds min_heartbeat_timeout{500};

// A heartbeat path: the n-th interconnect of every node forms link n.
struct interconnect {
  std::string address;  // IPv4 or IPv6 literal this node sends from and listens on
  uint16_t port = default_heartbeat_port;
  std::string device;  // bind to this interface when set (SO_BINDTODEVICE)
  source_loc loc;
  field_locs locs;
};

struct heartbeat_config {
  // Defaults: safe rather than fast. 10 s rides out 9 lost heartbeats in a row and the pauses
  // of a busy or live-migrated VM; fast sites use 200ms / 1s (docs/configuration.md).
  std::chrono::milliseconds interval{1'000};
  std::chrono::milliseconds timeout{10'000};
  source_loc loc;
  field_locs locs;
};

enum class quorum_mode { majority, witness, etcd, none };
enum class tie_breaker { none, lowest_id };
enum class loss_action { stop_groups, fence };
std::string_view to_string(quorum_mode m) noexcept;
std::string_view to_string(loss_action a) noexcept;
std::string_view to_string(tie_breaker t) noexcept;

struct witness_config {
  std::string url;         // tandem-witness base URL
  std::string token_file;  // bearer token the witness requires (optional)
  std::chrono::milliseconds lease{10'000};
  std::chrono::milliseconds renew{3'000};  // less than half the lease
  source_loc loc;
  field_locs locs;
};

struct etcd_config {
  std::vector<std::string> endpoints;       // http(s) URLs
  std::string key;                          // default "/tandem/<cluster name>/quorum"
  std::chrono::milliseconds lease{10'000};  // whole seconds (etcd lease TTLs are in seconds)
  std::chrono::milliseconds renew{3'000};
  std::string ca_file, cert_file, key_file;  // TLS, all optional
  source_loc loc;
  field_locs locs;
};

// Network partition resolution: a node that loses its peers checks these; if none answers, it
// is the isolated side and gives up its groups.
struct partition_resolution {
  std::vector<std::string> ping;  // IP addresses, ICMP echo
  std::vector<std::string> http;  // URLs; any HTTP answer counts
  std::chrono::milliseconds timeout{1'000};
  source_loc loc;
  field_locs locs;
};

struct on_loss_config {
  loss_action action = loss_action::stop_groups;
  std::string fence_command;  // run with /bin/sh -c; required when action is fence
  source_loc loc;
  field_locs locs;
};

struct quorum_config {
  quorum_mode mode = quorum_mode::majority;
  tie_breaker tie = tie_breaker::none;  // majority: who keeps an exact half
  // The time a node that lost quorum has to stop its groups; the others wait as long before
  // taking them over (majority, none, partition resolution; leases have their own bound).
  std::chrono::milliseconds stop_timeout{5'000};
  witness_config witness;  // mode witness
  etcd_config etcd;        // mode etcd
  partition_resolution resolution;
  on_loss_config on_loss;
  source_loc loc;
  field_locs locs;
};

struct api_config {
  std::string socket = "/run/tandem/tandemd.sock";  // mode 0600
  bool http = false;                                // the HTTP API (and /metrics) is on
  std::string http_address = "127.0.0.1";
  uint16_t http_port = default_api_port;
  std::string token_file;  // bearer token for HTTP; required when http is on
  source_loc loc;
  field_locs locs;
};

enum class alert_severity { info, warning, error };
std::string_view to_string(alert_severity s) noexcept;

struct webhook_config {
  std::string url;
  alert_severity min_severity = alert_severity::warning;
  std::vector<std::string> events;  // event names or patterns ("group.*"); empty: all
  std::chrono::milliseconds timeout{5'000};
  std::string token_file;  // sent as a bearer token when set
  source_loc loc;
  field_locs locs;
};

// An Amazon SNS topic that gets alerts (docs/alerts.md#amazon-sns): each matching event is
// published to it with the webhooks' JSON payload as the message.
struct sns_topic_config {
  std::string topic_arn;  // arn:aws[-cn|-us-gov]:sns:<region>:<account>:<name>
  std::string region;     // the signing region; default: the ARN's
  std::string endpoint;   // scheme://host[:port]; empty: the region's public endpoint
  alert_severity min_severity = alert_severity::warning;
  std::vector<std::string> events;  // as webhook_config::events
  source_loc loc;
  field_locs locs;
};

// Monitor check times sent to Amazon CloudWatch (docs/alerts.md#amazon-cloudwatch).
struct cloudwatch_config {
  bool present = false;  // the section is written: the times are sent
  std::string metric_namespace = "Tandem";
  std::string region;                          // empty: resolved as the AWS SDKs do
  std::string endpoint;                        // scheme://host[:port]; empty: the public endpoint
  std::chrono::milliseconds interval{60'000};  // how often the buffered times are sent
  source_loc loc;
  field_locs locs;
};

struct alerts_config {
  std::vector<webhook_config> webhooks;
  std::vector<sns_topic_config> sns;
  cloudwatch_config cloudwatch;
  source_loc loc;
  field_locs locs;
};

// SNS topic ARNs and AWS region names as the alerts section accepts them.
struct sns_arn {
  std::string partition;  // aws | aws-cn | aws-us-gov
  std::string region;
  std::string account;  // 12 digits
  std::string topic;    // [A-Za-z0-9_-]{1,256}, or such a name ending in ".fifo"
};
// The parts of `arn`, or nullopt with `why` saying what is wrong with it.
std::optional<sns_arn> parse_sns_arn(std::string_view arn, std::string* why = nullptr);
// "us-east-1", "cn-north-1", "us-gov-west-1": lower-case words joined by '-', a number last.
bool is_aws_region(std::string_view region) noexcept;
// The partition a region belongs to: aws-cn for cn-*, aws-us-gov for us-gov-*, else aws.
std::string_view aws_partition_of(std::string_view region) noexcept;

// What one node sets differently from the cluster-wide values (nodes[].overrides). Only these
// keys may be overridden; docs/configuration.md says why.
struct node_overrides {
  std::optional<std::chrono::milliseconds> heartbeat_interval, heartbeat_timeout;
  std::optional<std::vector<std::string>> ping, http;
  std::optional<std::chrono::milliseconds> resolution_timeout;
  std::optional<loss_action> on_loss_action;
  std::optional<std::string> fence_command;
  std::optional<std::string> api_http_address;
  std::optional<uint16_t> api_http_port;
  source_loc loc;
  field_locs locs;

  [[nodiscard]] bool empty() const noexcept;
};

struct node_config {
  std::string name;
  int priority = 0;  // unique; lower is preferred (1 before 2)
  std::vector<interconnect> interconnects;
  node_overrides overrides;
  source_loc loc;
  field_locs locs;
};

struct cluster_config {
  std::string file;  // where it was loaded from (for messages)
  int version = 1;
  std::string name;
  std::string secret_file;  // HMAC key for heartbeats
  std::vector<node_config> nodes;
  heartbeat_config heartbeat;
  quorum_config quorum;
  std::vector<group_config> groups;
  std::vector<monitor_config> monitors;
  mirrors_config mirrors;
  alerts_config alerts;
  api_config api;
  // Set by effective_config(): the node whose view this is (its overrides are applied to the
  // sections above, and to every resource's and monitor's parameters). Empty: the file as
  // written, cluster-wide values.
  std::string effective_node;
  source_loc loc;
  field_locs locs;

  [[nodiscard]] const node_config* find_node(std::string_view name) const noexcept;
  [[nodiscard]] const group_config* find_group(std::string_view name) const noexcept;
  [[nodiscard]] const monitor_config* find_monitor(std::string_view name) const noexcept;
  // Node names in priority order (most preferred first).
  [[nodiscard]] std::vector<std::string> node_names_by_priority() const;
};

struct cluster_load_result {
  cluster_config config;  // meaningful only when ok()
  diagnostics diag;       // every error and warning, sorted by line
  [[nodiscard]] bool ok() const noexcept { return diag.ok(); }
};

// Loads and validates a cluster file, collecting every problem. `file_name` is what messages
// call the file. Never throws for bad input (YAML syntax errors included).
cluster_load_result parse_cluster_text(std::string_view text, const std::string& file_name);
cluster_load_result parse_cluster_file(const std::string& path);
// Throws config_error (every problem in what()) unless the file is valid.
cluster_config load_cluster_file(const std::string& path);

// The configuration as `node` sees it: heartbeat, quorum and api with that node's overrides
// applied, and every resource's and monitor's parameters with that node's per_node values
// merged in (per_node maps are then empty). Throws std::invalid_argument naming the nodes when
// there is no such node.
cluster_config effective_config(const cluster_config& cfg, std::string_view node);

}  // namespace tandem::ctl::config
