// SPDX-License-Identifier: Apache-2.0
// tandemd's core on loopback (control/daemon/daemon.h): secrets and tokens, the config digest,
// the event log and metrics formats, start-up refusals, the API over the unix socket and HTTP,
// and two daemons in one process forming a cluster, leaving and coming back.
#include "control/daemon/daemon.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>
#include <asio/post.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/api/jsonl_socket.h"
#include "control/cli/commands.h"
#include "control/config/cluster_config.h"
#include "control/daemon/event_log.h"
#include "control/daemon/metrics.h"
#include "control/quorum/http_client.h"
#include "control/witness/server.h"
#include "tests/support/temp_dir.h"

namespace tandem::ctl::daemon {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using json = nlohmann::json;

// Named tandem-daemon-XXXXXX, like every directory these tests make.
struct temp_dir : test::temp_dir {
  temp_dir() : test::temp_dir("tandem-daemon") {}
};

void write(const std::string& path, const std::string& text, mode_t mode = 0600) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  ::chmod(path.c_str(), mode);
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "no exception";
  return {};
}

// A UDP / TCP port free on 127.0.0.1 right now.
uint16_t free_port() {
  asio::io_context io;
  asio::ip::udp::socket s(io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return s.local_endpoint().port();
}

// ---- pieces ----

TEST(cluster_secret, refusals_name_the_file_and_the_fix) {
  temp_dir d;
  write(d.file("ok"), std::string(32, 'k'));
  EXPECT_EQ(load_cluster_secret(d.file("ok")).size(), 32u);
  write(d.file("open"), std::string(32, 'k'), 0644);
  const std::string open = error_of([&] { (void)load_cluster_secret(d.file("open")); });
  EXPECT_THAT(open, HasSubstr(d.file("open")));
  EXPECT_THAT(open, HasSubstr("mode 0644"));
  EXPECT_THAT(open, HasSubstr("chmod 600"));
  write(d.file("short"), "tiny");
  EXPECT_THAT(error_of([&] { (void)load_cluster_secret(d.file("short")); }),
              HasSubstr("4 bytes; it must hold 16 bytes to 64 KiB"));
  EXPECT_THAT(error_of([&] { (void)load_cluster_secret(d.file("missing")); }),
              HasSubstr("cannot open"));
  std::filesystem::create_directory(d.file("dir"));
  ::chmod(d.file("dir").c_str(), 0700);
  EXPECT_THAT(error_of([&] { (void)load_cluster_secret(d.file("dir")); }),
              HasSubstr("not a regular file"));
}

TEST(token_file, first_line_trimmed_and_empty_refused) {
  temp_dir d;
  write(d.file("t"), "  s3cret-token \nsecond line\n");
  EXPECT_EQ(load_token_file(d.file("t")), "s3cret-token");
  write(d.file("e"), "\n");
  EXPECT_THAT(error_of([&] { (void)load_token_file(d.file("e")); }), HasSubstr("empty"));
}

TEST(config_digest, ignores_formatting_and_follows_content) {
  const char* a =
      "cluster: {name: c, secret_file: /s}\nnodes:\n"
      "  - {name: a, interconnects: [{address: 10.0.0.1}]}\n";
  const char* b =
      "# a comment\ncluster:\n  name: c\n  secret_file: /s\nnodes:\n  - name: a\n"
      "    interconnects:\n      - address: 10.0.0.1\n";
  const char* c =
      "cluster: {name: c, secret_file: /s}\nnodes:\n"
      "  - {name: a, interconnects: [{address: 10.0.0.2}]}\n";
  const auto da = config_digest(config::parse_cluster_text(a, "a").config);
  EXPECT_EQ(da, config_digest(config::parse_cluster_text(b, "b").config));
  EXPECT_NE(da, config_digest(config::parse_cluster_text(c, "c").config));
  EXPECT_NE(da, 0u);
}

TEST(event_log, serials_ring_and_names) {
  event_log log(3);
  for (int i = 0; i < 5; ++i) {
    event_record r;
    r.module = "heartbeat";
    r.id = 2;
    r.name = event_name("heartbeat", 2);
    r.level = i % 2 ? cluster::severity::error : cluster::severity::info;
    r.message = "m" + std::to_string(i);
    log.add(r);
  }
  EXPECT_EQ(log.last_serial(), 5u);
  EXPECT_EQ(log.first_serial(), 3u);  // two fell off the ring
  const json all = log.since(0, 100);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0]["serial"], 3);
  EXPECT_EQ(all[0]["message"], "m2");
  EXPECT_EQ(all[0]["name"], "heartbeat.node_down");
  EXPECT_EQ(log.since(4, 100).size(), 1u);
  EXPECT_EQ(log.since(0, 2).size(), 2u);
  EXPECT_EQ(log.count(cluster::severity::error), 2u);
  EXPECT_EQ(log.count(cluster::severity::info), 3u);
  EXPECT_EQ(event_name("quorum", 2), "quorum.lost");
  EXPECT_EQ(event_name("tandemd", 5), "tandemd.groups_stop");
  EXPECT_EQ(event_name("heartbeat", 99), "heartbeat.event_99");
  const auto t =
      std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'000'123));
  EXPECT_EQ(rfc3339_ms(t), "2023-11-14T22:13:20.123Z");
}

TEST(metrics_writer, families_are_contiguous_and_labels_escaped) {
  metrics_writer m;
  m.gauge("a_up", "help a", 1, {{"node", "n1"}});
  m.gauge("b_rtt", "help b", 0.25, {});
  m.gauge("a_up", "help a", 0, {{"node", "we\"ird\\\n"}});
  m.counter("c_total", "help c", 12345678901, {});
  EXPECT_EQ(m.text(),
            "# HELP a_up help a\n# TYPE a_up gauge\na_up{node=\"n1\"} 1\n"
            "a_up{node=\"we\\\"ird\\\\\\n\"} 0\n"
            "# HELP b_rtt help b\n# TYPE b_rtt gauge\nb_rtt 0.25\n"
            "# HELP c_total help c\n# TYPE c_total counter\nc_total 12345678901\n");
}

// ---- daemons on loopback ----

struct node_files {
  std::string config, secret, token;
  uint16_t ports[2] = {0, 0};
  uint16_t http_port = 0, http_port_b = 0;
};

node_files two_node_files(const temp_dir& d, const std::string& extra = {}) {
  node_files f;
  f.config = d.file("cluster.yaml");
  f.secret = d.file("secret");
  f.token = d.file("token");
  write(f.secret, std::string(32, 'x'));
  write(f.token, "tok-123\n");
  f.ports[0] = free_port();
  f.ports[1] = free_port();
  f.http_port = free_port();
  f.http_port_b = free_port();
  std::ofstream c(f.config);
  c << "cluster: {name: unit, secret_file: " << f.secret << "}\nnodes:\n"
    << "  - {name: a, interconnects: [{address: 127.0.0.1, port: " << f.ports[0] << "}]}\n"
    << "  - {name: b, interconnects: [{address: 127.0.0.1, port: " << f.ports[1] << "}],\n"
    << "     overrides: {api: {http: {port: " << f.http_port_b << "}}}}\n"
    << "heartbeat: {interval: 100ms, timeout: 500ms}\n"
    << "quorum: {mode: majority, tie_breaker: lowest_id}\n"
    << "api: {http: {address: 127.0.0.1, port: " << f.http_port << ", token_file: " << f.token
    << "}}\n"
    << extra;
  return f;
}

// Runs daemons on one io_context in a background thread.
class runner {
 public:
  ~runner() { stop(); }
  cluster_daemon& add(daemon_options o) {
    o.log = [](std::string_view) {};
    daemons_.push_back(std::make_unique<cluster_daemon>(io_, std::move(o)));
    return *daemons_.back();
  }
  void run() {
    for (auto& d : daemons_)
      d->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  void stop() {
    if (!thread_.joinable()) return;
    io_.stop();
    thread_.join();
    daemons_.clear();
  }

 private:
  asio::io_context io_;
  std::vector<std::unique_ptr<cluster_daemon>> daemons_;
  std::thread thread_;
};

daemon_options options_for(const temp_dir& d, const node_files& f, const std::string& node) {
  daemon_options o;
  o.config_file = f.config;
  o.node = node;
  o.socket = d.file(node + ".sock");
  o.state_dir = d.file(node + ".state");
  return o;
}

json call(const std::string& sock, const json& req) {
  api::jsonl_client c(sock, 5s);
  return c.call(req);
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds limit = 5s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

std::string peer_state(const json& status, const std::string& name) {
  for (const json& n : status["nodes"])
    if (n.value("name", "") == name) return n.value("state", "");
  return "";
}

TEST(daemon, start_up_refusals_are_clear) {
  temp_dir d;
  node_files f = two_node_files(d);
  asio::io_context io;
  daemon_options o = options_for(d, f, "zed");
  o.log = [](std::string_view) {};
  EXPECT_THAT(error_of([&] { cluster_daemon x(io, o); }),
              HasSubstr("no node named 'zed' (the nodes are a, b)"));

  // A bad file: every problem with file, line and key.
  write(d.file("bad.yaml"),
        "cluster: {name: unit, secret_file: " + f.secret +
            "}\nnodes:\n"
            "  - {name: a, interconnects: [{address: 127.0.0.1}]}\nheartbeat: {interval: 10ms}\n");
  o = options_for(d, f, "a");
  o.config_file = d.file("bad.yaml");
  o.log = [](std::string_view) {};
  const std::string bad = error_of([&] { cluster_daemon x(io, o); });
  EXPECT_THAT(bad, HasSubstr("bad.yaml:4"));
  EXPECT_THAT(bad, HasSubstr("heartbeat.interval"));

  // A secret others can read.
  ::chmod(f.secret.c_str(), 0640);
  o = options_for(d, f, "a");
  o.log = [](std::string_view) {};
  EXPECT_THAT(error_of([&] { cluster_daemon x(io, o); }), HasSubstr("chmod 600"));
  ::chmod(f.secret.c_str(), 0600);

  // The heartbeat port is taken.
  asio::ip::udp::socket taken(
      io, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), f.ports[0]));
  const std::string busy = error_of([&] { cluster_daemon x(io, o); });
  EXPECT_THAT(busy, HasSubstr("interconnect link0 (127.0.0.1:" + std::to_string(f.ports[0])));
  EXPECT_THAT(busy, HasSubstr("cannot bind"));
}

TEST(daemon, two_daemons_form_a_cluster_and_answer_the_api) {
  temp_dir d;
  node_files f = two_node_files(d);
  runner r;
  r.add(options_for(d, f, "a"));
  r.add(options_for(d, f, "b"));
  r.run();
  const std::string sa = d.file("a.sock"), sb = d.file("b.sock");
  ASSERT_TRUE(wait_until([&] { return peer_state(call(sa, {{"cmd", "status"}}), "b") == "up"; }));
  ASSERT_TRUE(wait_until([&] { return peer_state(call(sb, {{"cmd", "status"}}), "a") == "up"; }));
  const json s = call(sa, {{"cmd", "status"}});
  EXPECT_EQ(s["cluster"], "unit");
  EXPECT_EQ(s["node"], "a");
  EXPECT_EQ(s["node_id"], 0);
  EXPECT_EQ(s["state"], "online");
  EXPECT_TRUE(s["quorum"]["holds"].get<bool>()) << s.dump();
  EXPECT_EQ(s["quorum"]["mode"], "majority");
  EXPECT_GT(s["links"][0]["sent"].get<uint64_t>(), 0u);
  const json& b = s["nodes"][1];
  EXPECT_EQ(b["reported"]["state"], "online");
  EXPECT_EQ(b["reported"]["config_digest"], s["config_digest"]);
  EXPECT_TRUE(wait_until([&] {
    return call(sa, {{"cmd", "status"}})["nodes"][1]["reported"]["sees"].value("a", "") == "up";
  })) << "b reports seeing a";
  EXPECT_TRUE(b["links"][0].contains("rtt_us"));

  // Events: started, joined, node up, quorum held, in order.
  const json ev = call(sa, {{"cmd", "events"}});
  ASSERT_TRUE(ev["ok"].get<bool>());
  std::vector<std::string> names;
  for (const json& e : ev["events"])
    names.push_back(e["name"]);
  EXPECT_THAT(names, ::testing::IsSupersetOf({"tandemd.started", "tandemd.cluster_started",
                                              "heartbeat.node_up", "quorum.held"}));
  EXPECT_EQ(call(sa, {{"cmd", "events"}, {"since", ev["last"]}})["events"].size(), 0u);

  // Bad values are refused with a clear error.
  EXPECT_THAT(call(sa, {{"cmd", "events"}, {"since", "abc"}})["error"].get<std::string>(),
              HasSubstr("\"since\" must be a whole number"));
  EXPECT_FALSE(call(sa, {{"cmd", "events"}, {"limit", -1}})["ok"].get<bool>());
  // Unknown and empty commands.
  EXPECT_THAT(call(sa, {{"cmd", "frobnicate"}})["error"].get<std::string>(),
              HasSubstr("unknown command 'frobnicate'"));
  EXPECT_FALSE(call(sa, json::object())["ok"].get<bool>());
  const json cfg = call(sa, {{"cmd", "config"}});
  EXPECT_EQ(cfg["config"]["quorum"]["tie_breaker"], "lowest_id");

  // b leaves: a sees it go at once; with two nodes and lowest_id, a (the first) keeps quorum.
  ASSERT_EQ(call(sb, {{"cmd", "cluster_stop"}})["state"], "stopped");
  EXPECT_TRUE(wait_until(
      [&] {
        return peer_state(call(sa, {{"cmd", "status"}}), "b") == "down";
      },
      300ms));
  EXPECT_TRUE(call(sa, {{"cmd", "status"}})["quorum"]["holds"].get<bool>());
  EXPECT_FALSE(call(sb, {{"cmd", "cluster_stop"}})["changed"].get<bool>());
  ASSERT_TRUE(call(sb, {{"cmd", "cluster_start"}})["changed"].get<bool>());
  EXPECT_TRUE(wait_until([&] { return peer_state(call(sa, {{"cmd", "status"}}), "b") == "up"; }));

  // tandemctl over the socket.
  std::ostringstream out, err;
  ASSERT_EQ(cli::run_tandemctl({"--socket", sa, "status"}, out, err), 0) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("cluster unit, node a (id 0): online"));
  EXPECT_THAT(out.str(), HasSubstr("quorum:  held"));
  out.str("");
  ASSERT_EQ(cli::run_tandemctl({"--socket", sa, "events", "-n", "100"}, out, err), 0);
  EXPECT_THAT(out.str(), HasSubstr("heartbeat.node_left (8)"));
  out.str("");
  ASSERT_EQ(cli::run_tandemctl({"--socket", sa, "status", "--json"}, out, err), 0);
  EXPECT_EQ(json::parse(out.str())["node"], "a");
  EXPECT_EQ(cli::run_tandemctl({"--socket", sa, "events", "--severity", "loud"}, out, err),
            cli::exit_usage);
}

TEST(daemon, http_api_needs_the_token_and_serves_status_events_and_metrics) {
  temp_dir d;
  node_files f = two_node_files(d);
  runner r;
  r.add(options_for(d, f, "a"));
  r.run();
  const std::string base = "http://127.0.0.1:" + std::to_string(f.http_port);
  quorum::http_client http;
  const quorum::http_reply no = http.get(base + "/v1/status", 2s);
  EXPECT_EQ(no.status, 401);
  const std::vector<std::string> auth = {"Authorization: Bearer tok-123"};
  EXPECT_EQ(http.get(base + "/v1/status", 2s, {"Authorization: Bearer wrong"}).status, 401);
  const quorum::http_reply st = http.get(base + "/v1/status", 2s, auth);
  ASSERT_EQ(st.status, 200) << st.error;
  EXPECT_EQ(json::parse(st.body)["node"], "a");
  const quorum::http_reply ev = http.get(base + "/v1/events?since=1&limit=1", 2s, auth);
  ASSERT_EQ(ev.status, 200);
  ASSERT_EQ(json::parse(ev.body)["events"].size(), 1u);
  EXPECT_EQ(json::parse(ev.body)["events"][0]["serial"], 2);
  EXPECT_EQ(http.get(base + "/v1/events?since=x", 2s, auth).status, 400);
  EXPECT_EQ(http.get(base + "/nope", 2s, auth).status, 404);
  const quorum::http_reply m = http.get(base + "/metrics", 2s, auth);
  ASSERT_EQ(m.status, 200);
  EXPECT_THAT(m.body, HasSubstr("# TYPE tandem_quorum_held gauge\n"));
  EXPECT_THAT(m.body, HasSubstr("tandem_node_up{node=\"b\"} 0\n"));
  EXPECT_THAT(m.body, HasSubstr("tandem_heartbeats_sent_total{link=\"link0\"}"));
  EXPECT_THAT(m.body, HasSubstr("tandem_api_http_refused_total 2\n"));
}

TEST(daemon, stopped_start_waits_for_cluster_start) {
  temp_dir d;
  node_files f = two_node_files(d);
  runner r;
  daemon_options o = options_for(d, f, "a");
  o.start_stopped = true;
  r.add(o);
  r.run();
  const std::string sa = d.file("a.sock");
  EXPECT_EQ(call(sa, {{"cmd", "status"}})["state"], "stopped");
  EXPECT_EQ(call(sa, {{"cmd", "status"}})["links"][0]["sent"], 0);
  ASSERT_TRUE(call(sa, {{"cmd", "cluster_start"}})["ok"].get<bool>());
  EXPECT_EQ(call(sa, {{"cmd", "status"}})["state"], "online");
}

TEST(daemon, events_reach_webhooks_and_partition_targets_are_probed) {
  // A webhook receiver on loopback, on its own thread.
  asio::io_context rio;
  std::mutex mu;
  std::vector<json> received;
  witness::server_options so;
  so.listen = "127.0.0.1:0";
  witness::server receiver(rio, so, [&](const witness::http_request& r, witness::time_point) {
    std::lock_guard<std::mutex> g(mu);
    received.push_back(json::parse(r.body));
    return witness::http_response{};
  });
  receiver.start();
  std::thread rt([&] { rio.run(); });
  const std::string url = "http://127.0.0.1:" + std::to_string(receiver.local_endpoint().port());

  temp_dir d;
  node_files f = two_node_files(d, "alerts: {webhooks: [{url: \"" + url +
                                       "/hook\", severity: info, events: [\"tandemd.*\"]}]}\n");
  // Partition resolution: 127.0.0.1 always answers, so with b absent this node is `reachable`.
  {
    std::ifstream in(f.config);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string from = "quorum: {mode: majority, tie_breaker: lowest_id}";
    text.replace(text.find(from), from.size(),
                 "quorum: {mode: majority, tie_breaker: lowest_id, partition_resolution: "
                 "{ping: [127.0.0.1], timeout: 500ms}}");
    std::ofstream(f.config, std::ios::trunc) << text;
  }
  runner r;
  r.add(options_for(d, f, "a"));
  r.run();
  const std::string sa = d.file("a.sock");
  EXPECT_TRUE(wait_until([&] {
    std::lock_guard<std::mutex> g(mu);
    return received.size() >= 2;
  }));
  {
    std::lock_guard<std::mutex> g(mu);
    ASSERT_GE(received.size(), 2u);
    EXPECT_EQ(received[0]["name"], "tandemd.started");
    EXPECT_EQ(received[0]["cluster"], "unit");
    EXPECT_EQ(received[0]["node"], "a");
    for (const json& a : received)
      EXPECT_EQ(a["module"], "tandemd") << a.dump();  // the filter kept heartbeat.* out
  }
  EXPECT_TRUE(wait_until(
      [&] {
        return call(sa, {{"cmd", "status"}})["quorum"]["partition"] == "reachable";
      },
      5s));
  const json s = call(sa, {{"cmd", "status"}});
  ASSERT_EQ(s["webhooks"].size(), 1u);
  EXPECT_GE(s["webhooks"][0]["sent"].get<uint64_t>(), 2u);
  r.stop();
  // The receiver runs on its own thread, and a witness server is used from one thread only
  // (server.h): stop it there. Stopping it from here raced with a session closing its socket.
  asio::post(rio, [&] {
    receiver.stop();
    rio.stop();
  });
  rt.join();
}

void replace_in(const std::string& path, const std::string& from, const std::string& to) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t at = text.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  text.replace(at, from.size(), to);
  std::ofstream(path, std::ios::trunc) << text;
}

TEST(daemon, reload_applies_live_changes_and_refuses_the_rest) {
  temp_dir d;
  node_files f = two_node_files(d);
  runner r;
  r.add(options_for(d, f, "a"));
  r.run();
  const std::string sa = d.file("a.sock");
  const std::string digest = call(sa, {{"cmd", "status"}})["config_digest"];
  EXPECT_FALSE(call(sa, {{"cmd", "reload"}})["changed"].get<bool>());

  // Heartbeat timing and partition targets are live.
  replace_in(f.config, "heartbeat: {interval: 100ms, timeout: 500ms}",
             "heartbeat: {interval: 150ms, timeout: 900ms}");
  replace_in(f.config, "tie_breaker: lowest_id}",
             "tie_breaker: lowest_id, partition_resolution: {ping: [127.0.0.1]}}");
  // b is down and a holds quorum (lowest_id): a new, never-probed target would make a the
  // isolated side at once, so the reload is refused, and all of it (the timing too).
  std::ostringstream out, err;
  EXPECT_EQ(cli::run_tandemctl({"--socket", sa, "config", "reload"}, out, err), cli::exit_failed);
  EXPECT_THAT(err.str(), HasSubstr("have not been probed yet"));
  EXPECT_EQ(call(sa, {{"cmd", "status"}})["heartbeat"]["interval_ms"], 100);
  EXPECT_EQ(call(sa, {{"cmd", "status"}})["config_digest"], digest);
  // Not holding quorum (out of the cluster), the same reload is applied.
  ASSERT_TRUE(call(sa, {{"cmd", "cluster_stop"}})["ok"].get<bool>());
  EXPECT_FALSE(call(sa, {{"cmd", "status"}})["quorum"]["holds"].get<bool>());
  out.str("");
  err.str("");
  ASSERT_EQ(cli::run_tandemctl({"--socket", sa, "config", "reload"}, out, err), 0) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("heartbeat"));
  ASSERT_TRUE(call(sa, {{"cmd", "cluster_start"}})["ok"].get<bool>());
  json s = call(sa, {{"cmd", "status"}});
  EXPECT_EQ(s["heartbeat"]["interval_ms"], 150);
  EXPECT_EQ(s["heartbeat"]["timeout_ms"], 900);
  EXPECT_NE(s["config_digest"], digest);
  EXPECT_TRUE(wait_until([&] {
    return call(sa, {{"cmd", "status"}})["quorum"]["partition"] == "reachable";
  }));

  // The cluster name needs a restart: refused, nothing changes.
  replace_in(f.config, "name: unit", "name: other");
  out.str("");
  err.str("");
  EXPECT_EQ(cli::run_tandemctl({"--socket", sa, "config", "reload"}, out, err), cli::exit_failed);
  EXPECT_THAT(err.str(), HasSubstr("need tandemd restarted"));
  EXPECT_THAT(err.str(), HasSubstr("cluster.name"));
  EXPECT_EQ(call(sa, {{"cmd", "status"}})["cluster"], "unit");

  // An invalid file: refused with the problems.
  replace_in(f.config, "interval: 150ms", "interval: 10ms");
  const json bad = call(sa, {{"cmd", "reload"}});
  EXPECT_FALSE(bad["ok"].get<bool>());
  EXPECT_THAT(bad["error"].get<std::string>(), HasSubstr("is invalid; nothing changed"));
  EXPECT_THAT(bad["error"].get<std::string>(), HasSubstr("cluster.yaml:6"));
  EXPECT_THAT(bad["error"].get<std::string>(), HasSubstr("heartbeat.interval"));
  bool refused = false, reloaded = false;
  const json all = call(sa, {{"cmd", "events"}});
  for (const json& e : all["events"]) {
    refused |= e["name"] == "tandemd.reload_refused";
    reloaded |= e["name"] == "tandemd.config_reloaded";
  }
  EXPECT_TRUE(refused);
  EXPECT_TRUE(reloaded);
}

// tandemctl's status table against a scripted daemon: an asymmetric view is pointed out.
TEST(tandemctl, status_points_out_views_that_differ) {
  temp_dir d;
  asio::io_context io;
  const json status = json::parse(R"js({"ok": true, "cluster": "c", "node": "a", "node_id": 0,
    "state": "online", "heartbeat": {"interval_ms": 200, "timeout_ms": 1000},
    "quorum": {"mode": "majority", "holds": true, "detail": "2 of 3 nodes up (2 needed)",
               "partition": "off"},
    "nodes": [{"id": 0, "name": "a", "self": true, "state": "up", "pending": false, "links": []},
              {"id": 1, "name": "b", "self": false, "state": "up", "pending": false,
               "last_heard_ms": 50,
               "links": [{"link": 0, "name": "link0", "state": "up", "rtt_us": 300}],
               "reported": {"state": "online", "quorum": true, "config_digest": "1",
                            "sees": {"a": "up", "b": "up", "c": "up"}}},
              {"id": 2, "name": "c", "self": false, "state": "down", "pending": false,
               "last_heard_ms": 20000,
               "links": [{"link": 0, "name": "link0", "state": "down"}]}]})js");
  api::jsonl_server_options so;
  so.path = d.file("fake.sock");
  api::jsonl_server server(io, so, [&](const json&) { return status; });
  std::thread t([&] { io.run(); });
  std::ostringstream out, err;
  const int rc = cli::run_tandemctl({"--socket", so.path, "status"}, out, err);
  io.stop();
  t.join();
  ASSERT_EQ(rc, 0) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("quorum:  held (majority: 2 of 3 nodes up (2 needed))"));
  EXPECT_THAT(out.str(), HasSubstr("link0 up (300 us)"));
  EXPECT_THAT(out.str(), HasSubstr("20 s ago"));
  EXPECT_THAT(out.str(), HasSubstr("views that differ from this node's:\n  b sees c up\n"));
}

TEST(tandemctl, says_when_tandemd_is_not_running) {
  temp_dir d;
  std::ostringstream out, err;
  EXPECT_EQ(cli::run_tandemctl({"--socket", d.file("none.sock"), "status"}, out, err),
            cli::exit_unavailable);
  EXPECT_THAT(err.str(), HasSubstr("tandemd is not running"));
  EXPECT_EQ(cli::run_tandemctl({"--socket", d.file("none.sock"), "cluster", "stop"}, out, err),
            cli::exit_unavailable);
}

}  // namespace
}  // namespace tandem::ctl::daemon
