// SPDX-License-Identifier: Apache-2.0
// tandemd's core: the heartbeat sockets and timer, membership, quorum, events and the API.
#include "control/daemon/daemon.h"

#include <fcntl.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <asio/ip/udp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "control/alerts/aws_sinks.h"
#include "control/alerts/webhook.h"
#include "control/api/jsonl_socket.h"
#include "control/api/log_line.h"
#include "control/cluster/membership.h"
#include "control/config/config_json.h"
#include "control/config/reload.h"
#include "control/daemon/event_log.h"
#include "control/daemon/metrics.h"
#include "control/exec/process.h"
#include "control/groups/group_manager.h"
#include "control/quorum/lease.h"
#include "control/quorum/lease_runner.h"
#include "control/quorum/make.h"
#include "control/quorum/prober.h"
#include "control/witness/server.h"

namespace tandem::ctl::daemon {

namespace fs = std::filesystem;
using json = nlohmann::json;
using clock = std::chrono::steady_clock;
using time_point = clock::time_point;
using std::chrono::milliseconds;

std::vector<uint8_t> load_cluster_secret(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw std::runtime_error("cluster secret " + path + ": cannot open: " + std::strerror(errno));
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } c{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    throw std::runtime_error("cluster secret " + path + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    throw std::runtime_error("cluster secret " + path + ": not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw std::runtime_error("cluster secret " + path + ": mode " + mode +
                             " lets others read it; chmod 600 " + path);
  }
  constexpr off_t max_size = 64 << 10;
  if (st.st_size < static_cast<off_t>(cluster::min_cluster_secret_size) || st.st_size > max_size) {
    throw std::runtime_error("cluster secret " + path + ": " + std::to_string(st.st_size) +
                             " bytes; it must hold 16 bytes to 64 KiB (e.g. head -c 32 "
                             "/dev/urandom > " +
                             path + ")");
  }
  std::vector<uint8_t> key(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < key.size()) {
    const ssize_t n = ::read(fd, key.data() + got, key.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("cluster secret " + path + ": short read");
    got += static_cast<size_t>(n);
  }
  return key;
}

std::string load_token_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("token file " + path + ": cannot open: " + std::strerror(errno));
  std::string line;
  std::getline(f, line);
  const auto b = line.find_first_not_of(" \t\r\n");
  const auto e = line.find_last_not_of(" \t\r\n");
  if (b == std::string::npos) throw std::runtime_error("token file " + path + ": empty");
  return line.substr(b, e - b + 1);
}

uint32_t config_digest(const config::cluster_config& cfg) {
  const std::string text =
      config::to_json(cfg).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), md);
  uint32_t d = 0;
  for (int i = 0; i < 4; ++i)
    d |= static_cast<uint32_t>(md[i]) << (8 * i);
  return d == 0 ? 1 : d;
}

namespace {

std::string hex32(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "%08x", v);
  return b;
}

void default_log(std::string_view line) {
  api::log_line("tandemd", line);
}

// The incarnation of this run, persisted so the next one is always greater.
uint64_t next_incarnation(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("state directory " + dir + ": " + ec.message());
  const std::string file = dir + "/incarnation";
  uint64_t prev = 0;
  if (std::ifstream in(file); in) in >> prev;
  const uint64_t inc = cluster::new_incarnation(prev);
  // Written durably (file, rename, directory), so a crash cannot bring back an older value.
  const std::string tmp = file + ".tmp";
  const std::string text = std::to_string(inc) + "\n";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  ok = ok && ::rename(tmp.c_str(), file.c_str()) == 0;
  if (!ok) {
    throw std::runtime_error("state directory " + dir + ": cannot write " + file + ": " +
                             std::strerror(errno));
  }
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return inc;
}

int64_t ms_since(time_point then, time_point now) {
  return std::chrono::duration_cast<milliseconds>(now - then).count();
}

int64_t mono_ns(time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::string safe_dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json counters_json(const cluster::heartbeat_counters& c) {
  return {{"accepted", c.accepted},
          {"pending", c.pending},
          {"dropped_auth", c.dropped_auth},
          {"dropped_replay", c.dropped_replay},
          {"dropped_malformed", c.dropped_malformed},
          {"dropped_foreign", c.dropped_foreign}};
}

quorum::partition_config partition_of(const config::quorum_config& qc) {
  quorum::partition_config pc;
  for (const auto& a : qc.resolution.ping)
    pc.targets.push_back({quorum::probe_kind::ping, a});
  for (const auto& u : qc.resolution.http)
    pc.targets.push_back({quorum::probe_kind::http, u});
  return pc;
}

}  // namespace

struct cluster_daemon::impl {
  struct link {
    uint8_t index = 0;
    std::string name;
    asio::ip::udp::endpoint local;
    asio::ip::udp::socket socket;
    std::array<uint8_t, 2048> rx{};
    asio::ip::udp::endpoint from;
    uint64_t tx = 0, tx_errors = 0;
    std::string last_tx_error;
    std::vector<bool> send_warned;  // per peer: the warning was raised, sends still fail
    explicit link(asio::io_context& io) : socket(io) {}
  };

  asio::io_context& io;
  daemon_options opts;
  config::cluster_config file_cfg;  // as written (for the digest, config show)
  config::cluster_config cfg;       // this node's effective view
  uint8_t self = 0;
  std::string socket_path;
  uint64_t incarnation = 0;
  uint32_t digest = 0;
  std::chrono::system_clock::time_point started_wall = std::chrono::system_clock::now();
  time_point started = clock::now();

  event_log events;
  std::unique_ptr<cluster::membership> members;
  std::unique_ptr<quorum::quorum> q;
  std::unique_ptr<quorum::lease_backend> backend;
  std::unique_ptr<quorum::lease_runner> runner;
  std::unique_ptr<quorum::prober> probes;
  std::unique_ptr<alerts::webhook_dispatcher> webhooks;
  std::unique_ptr<alerts::sns_dispatcher> sns;
  std::unique_ptr<alerts::cloudwatch_publisher> cloudwatch;
  // Replaced by a reload: retired at once, stopped (joined) at shutdown.
  std::vector<std::unique_ptr<quorum::prober>> retired_probes;
  std::vector<std::unique_ptr<alerts::webhook_dispatcher>> retired_webhooks;
  std::vector<std::unique_ptr<alerts::sns_dispatcher>> retired_sns;
  std::vector<std::unique_ptr<alerts::cloudwatch_publisher>> retired_cloudwatch;
  std::vector<std::unique_ptr<link>> links;
  // peer_endpoints[node][link]
  std::vector<std::vector<asio::ip::udp::endpoint>> peer_endpoints;
  std::vector<uint8_t> last_up;

  asio::steady_timer timer;
  time_point next_round{};
  bool joined = false;  // sending heartbeats (cluster started)
  bool shutting_down = false;
  cluster::node_state state = cluster::node_state::starting;

  std::unique_ptr<api::jsonl_server> api;
  std::unique_ptr<witness::server> http;
  std::string http_token;
  uint64_t http_requests = 0, http_refused = 0;
  asio::thread_pool fence_worker{1};
  std::optional<quorum::loss> last_loss;
  std::unique_ptr<groups::group_manager> gm;
  bool leaving_in_progress = false;  // stopping groups before announcing `leaving`
  // Lease quorum: the lease was given up so that a peer can run a group (until it holds it).
  bool handing_off = false;
  time_point handoff_until{};
  std::vector<std::function<void()>> on_left;  // called once the node has left

  impl(asio::io_context& io_, daemon_options o) : io(io_), opts(std::move(o)), timer(io_) {
    if (!opts.log) opts.log = default_log;
  }

  // ---- events ----
  void on_event(const cluster::event& e) {
    event_record r;
    r.wall = std::chrono::system_clock::now();
    r.mono = e.time;
    r.level = e.level;
    r.module = std::string(e.module);
    r.id = e.id;
    r.name = event_name(e.module, e.id);
    r.message = e.message;
    if (e.node && *e.node < cfg.nodes.size()) r.about = cfg.nodes[*e.node].name;
    r.link = e.link;
    const event_record& rec = events.add(std::move(r));
    opts.log(std::string(cluster::to_string(rec.level)) + " " + rec.name + ": " + rec.message);
    // A failed alert is not itself sent as an alert: the target that failed would loop on it.
    if ((webhooks || sns) &&
        !(rec.module == daemon_module && rec.id == daemon_events::alert_failed)) {
      alerts::alert a;
      a.serial = rec.serial;
      a.cluster = cfg.name;
      a.node = opts.node;
      a.module = rec.module;
      a.id = rec.id;
      a.name = rec.name;
      a.level = rec.level;
      a.message = rec.message;
      a.time = rfc3339_ms(rec.wall);
      a.about = rec.about;
      a.link = rec.link;
      if (webhooks) (void)webhooks->post(a);
      if (sns) (void)sns->post(a);
    }
  }

  void emit(uint32_t id, cluster::severity level, std::string message) {
    cluster::event e;
    e.id = id;
    e.level = level;
    e.module = daemon_module;
    e.message = std::move(message);
    e.time = clock::now();
    on_event(e);
  }

  // The SNS topics of `ac` (none: nullptr), reporting alerts given up as events.
  std::unique_ptr<alerts::sns_dispatcher> make_sns(const config::alerts_config& ac) {
    if (ac.sns.empty()) return nullptr;
    auto d = std::make_unique<alerts::sns_dispatcher>(io.get_executor(), ac);
    d->on_failure([this](const alerts::sns_failure& f) {
      emit(daemon_events::alert_failed, cluster::severity::warning,
           "alert " + std::to_string(f.serial) + " (" + f.name +
               ") could not be published to SNS topic " + f.topic_arn + " after " +
               std::to_string(f.attempts) + " attempt(s): " + f.error);
    });
    return d;
  }

  // The CloudWatch publisher of `ac` (not configured: nullptr), not yet started.
  std::unique_ptr<alerts::cloudwatch_publisher> make_cloudwatch(const config::alerts_config& ac) {
    if (!ac.cloudwatch.present) return nullptr;
    auto p = std::make_unique<alerts::cloudwatch_publisher>(io.get_executor(), ac.cloudwatch,
                                                            cfg.name, opts.node);
    p->on_log([this](const std::string& line) { opts.log(line); });
    return p;
  }

  // ---- set-up ----
  void load() {
    file_cfg = config::load_cluster_file(opts.config_file);
    const config::node_config* me = file_cfg.find_node(opts.node);
    if (me == nullptr) {
      std::string names;
      for (const auto& n : file_cfg.nodes)
        names += (names.empty() ? "" : ", ") + n.name;
      throw std::runtime_error(opts.config_file + ": no node named '" + opts.node +
                               "' (the nodes are " + names + "); pass --node NAME");
    }
    cfg = config::effective_config(file_cfg, opts.node);
    if (!opts.replicator_socket.empty()) cfg.mirrors.control_socket = opts.replicator_socket;
    self = static_cast<uint8_t>(me - file_cfg.nodes.data());
    socket_path = opts.socket.empty() ? cfg.api.socket : opts.socket;
    digest = config_digest(file_cfg);
  }

  quorum::quorum_options quorum_options_of() const {
    quorum::quorum_options qo;
    qo.cluster.self = self;
    for (size_t i = 0; i < cfg.nodes.size(); ++i)
      qo.cluster.nodes.push_back({static_cast<uint8_t>(i), cfg.nodes[i].name});
    const config::quorum_config& qc = cfg.quorum;
    qo.stop_timeout = qc.stop_timeout;
    switch (qc.mode) {
      case config::quorum_mode::majority:
        qo.kind = quorum::mode::majority;
        qo.majority.tie = qc.tie == config::tie_breaker::lowest_id ? quorum::tie_breaker::lowest_id
                                                                   : quorum::tie_breaker::none;
        qo.majority.stop_timeout = qc.stop_timeout;
        break;
      case config::quorum_mode::none:
        qo.kind = quorum::mode::none;
        break;
      case config::quorum_mode::witness:
        qo.kind = quorum::mode::witness_lease;
        qo.lease.ttl = qc.witness.lease;
        qo.lease.renew_interval = qc.witness.renew;
        qo.witness.url = qc.witness.url;
        qo.witness.cluster = cfg.name;
        qo.witness.node = opts.node;
        if (!qc.witness.token_file.empty())
          qo.witness.token = load_token_file(qc.witness.token_file);
        break;
      case config::quorum_mode::etcd:
        qo.kind = quorum::mode::etcd_lease;
        qo.lease.ttl = qc.etcd.lease;
        qo.lease.renew_interval = qc.etcd.renew;
        qo.etcd.endpoints = qc.etcd.endpoints;
        qo.etcd.key = qc.etcd.key;
        qo.etcd.node = opts.node;
        qo.etcd.tls = {qc.etcd.ca_file, qc.etcd.cert_file, qc.etcd.key_file};
        break;
    }
    qo.partition = partition_of(qc);
    return qo;
  }

  void build(time_point now) {
    const std::vector<uint8_t> secret = load_cluster_secret(cfg.secret_file);
    cluster::heartbeat_codec codec(secret, cluster::cluster_id_of(cfg.name));
    incarnation = next_incarnation(opts.state_dir);

    const size_t nlinks = cfg.nodes[self].interconnects.size();
    cluster::membership_config mc;
    mc.self = self;
    for (size_t i = 0; i < cfg.nodes.size(); ++i) {
      const size_t k = cfg.nodes[i].interconnects.size();
      mc.nodes.push_back(
          {static_cast<uint8_t>(i), cfg.nodes[i].name, static_cast<uint16_t>((1u << k) - 1)});
    }
    for (size_t l = 0; l < nlinks; ++l)
      mc.link_names.push_back("link" + std::to_string(l));
    mc.interval = cfg.heartbeat.interval;
    mc.timeout = cfg.heartbeat.timeout;
    members = std::make_unique<cluster::membership>(
        mc, std::move(codec), incarnation, now, [this](const cluster::event& e) { on_event(e); });

    // Every peer's address on every link it shares with this node.
    peer_endpoints.resize(cfg.nodes.size());
    for (size_t i = 0; i < cfg.nodes.size(); ++i) {
      for (const auto& ic : cfg.nodes[i].interconnects)
        peer_endpoints[i].emplace_back(asio::ip::make_address(ic.address), ic.port);
    }

    for (size_t l = 0; l < nlinks; ++l) {
      const config::interconnect& ic = cfg.nodes[self].interconnects[l];
      auto lk = std::make_unique<link>(io);
      lk->index = static_cast<uint8_t>(l);
      lk->name = mc.link_names[l];
      lk->send_warned.assign(cfg.nodes.size(), false);
      lk->local = asio::ip::udp::endpoint(asio::ip::make_address(ic.address), ic.port);
      std::error_code ec;
      lk->socket.open(lk->local.protocol(), ec);
      if (!ec && !ic.device.empty()) {
        if (::setsockopt(lk->socket.native_handle(), SOL_SOCKET, SO_BINDTODEVICE, ic.device.c_str(),
                         static_cast<socklen_t>(ic.device.size())) != 0) {
          ec = std::error_code(errno, std::system_category());
        }
      }
      if (!ec) lk->socket.bind(lk->local, ec);
      if (!ec) lk->socket.non_blocking(true, ec);
      if (ec) {
        throw std::runtime_error(
            "interconnect " + lk->name + " (" + ic.address + ":" + std::to_string(ic.port) +
            (ic.device.empty() ? "" : " on " + ic.device) + "): cannot bind: " + ec.message() +
            " (is the address configured on this host, or another "
            "tandemd running?)");
      }
      links.push_back(std::move(lk));
    }

    const quorum::quorum_options qo = quorum_options_of();
    q = quorum::make_quorum(qo, now, [this](const cluster::event& e) { on_event(e); });
    q->on_lost([this](const quorum::loss& l) { on_quorum_lost(l); });
    backend = quorum::make_lease_backend(qo);
    if (backend) {
      auto& lq = static_cast<quorum::lease_quorum&>(*q);
      lq.set_contending(false, now);  // until this node joins
      runner = std::make_unique<quorum::lease_runner>(io.get_executor(), lq, *backend);
    }
    last_up = {self};

    if (!qo.partition.targets.empty()) {
      // Probed every second: partition resolution judges results up to 3 s old.
      probes = std::make_unique<quorum::prober>(
          io.get_executor(), qo.partition.targets, cfg.quorum.resolution.timeout,
          std::chrono::seconds(1), [this](const quorum::probe_result& r) {
            const time_point t = clock::now();
            q->update_reachability(std::span<const quorum::probe_result>(&r, 1), t);
            if (runner) runner->poke();
            after_input(t);
          });
    }
    if (!cfg.alerts.webhooks.empty()) {
      webhooks = std::make_unique<alerts::webhook_dispatcher>(io.get_executor(), cfg.alerts);
      webhooks->on_failure([this](const alerts::delivery_failure& f) {
        emit(daemon_events::alert_failed, cluster::severity::warning,
             "alert " + std::to_string(f.serial) + " (" + f.name + ") could not be delivered to " +
                 f.url + " after " + std::to_string(f.attempts) + " attempts: " + f.error);
      });
    }
    sns = make_sns(cfg.alerts);
    cloudwatch = make_cloudwatch(cfg.alerts);

    groups::manager_hooks gh;
    gh.emit = [this](const cluster::event& e) { on_event(e); };
    gh.stop_cluster = [this](const std::string& why) {
      if (joined && !shutting_down) leave(clock::now(), "final action: " + why);
    };
    gh.fence = [this](const std::string& why) { run_fence(why, cfg.quorum.stop_timeout); };
    gh.check_timed = [this](const std::string& monitor, std::chrono::nanoseconds took) {
      if (cloudwatch) cloudwatch->record(monitor, took);
    };
    gh.changed = [this] {
      // A group changed state here: tell the peers now rather than at the next round.
      if (!joined) return;
      const time_point n = clock::now();
      if (next_round > n) {
        next_round = n;
        arm(n);
      }
    };
    groups::manager_options gmo;
    gmo.log_dir = opts.state_dir + "/log";
    gmo.takeover_delay = q->takeover_delay();
    gmo.lease_quorum = runner != nullptr;
    gm = std::make_unique<groups::group_manager>(io, cfg, opts.node, self, std::move(gh), gmo);

    api::jsonl_server_options so;
    so.path = socket_path;
    std::error_code ec;
    fs::create_directories(fs::path(socket_path).parent_path(), ec);
    api = std::make_unique<api::jsonl_server>(io, so, [this](const json& r) { return execute(r); });
    if (cfg.api.http) {
      http_token = load_token_file(cfg.api.token_file);
      witness::server_options ho;
      const bool v6 = cfg.api.http_address.find(':') != std::string::npos;
      ho.listen = (v6 ? "[" + cfg.api.http_address + "]" : cfg.api.http_address) + ":" +
                  std::to_string(cfg.api.http_port);
      try {
        http = std::make_unique<witness::server>(
            io, ho, [this](const witness::http_request& r, time_point) { return serve_http(r); });
      } catch (const std::exception& e) {
        throw std::runtime_error("HTTP API on " + ho.listen +
                                 " (api.http): cannot listen: " + e.what());
      }
    }
  }

  // ---- heartbeats ----
  void receive_on(link& lk) {
    lk.socket.async_receive_from(
        asio::buffer(lk.rx), lk.from, [this, &lk](const std::error_code& ec, size_t n) {
          if (ec == asio::error::operation_aborted) return;
          if (!ec) {
            const time_point now = clock::now();
            const std::string from =
                lk.from.address().to_string() + ":" + std::to_string(lk.from.port());
            (void)members->receive(std::span<const uint8_t>(lk.rx.data(), n), lk.index, now, from);
            after_input(now);
          }
          receive_on(lk);
        });
  }

  void send_round(time_point now) {
    cluster::local_status ls;
    ls.state = state;
    ls.quorum = holds_now(now);
    ls.config_digest = digest;
    ls.groups = gm->reports();
    members->set_local_status(ls);
    members->begin_round();
    std::array<uint8_t, cluster::max_heartbeat_size> buf{};
    for (size_t p = 0; p < cfg.nodes.size(); ++p) {
      if (p == self) continue;
      for (auto& lk : links) {
        if (lk->index >= peer_endpoints[p].size()) continue;
        const int n = members->build(static_cast<uint8_t>(p), lk->index, now, buf);
        if (n < 0) continue;
        std::error_code ec;
        lk->socket.send_to(asio::buffer(buf.data(), static_cast<size_t>(n)),
                           peer_endpoints[p][lk->index], 0, ec);
        if (ec) {
          ++lk->tx_errors;
          lk->last_tx_error = ec.message();
          if (!lk->send_warned[p]) {
            lk->send_warned[p] = true;
            emit(daemon_events::send_failed, cluster::severity::warning,
                 "cannot send heartbeats on interconnect " + lk->name + " to " + cfg.nodes[p].name +
                     ": " + ec.message());
          }
        } else {
          ++lk->tx;
          lk->send_warned[p] = false;
        }
      }
    }
  }

  void sync_quorum(time_point now) {
    std::vector<uint8_t> up;
    for (size_t i = 0; i < cfg.nodes.size(); ++i)
      if (i == self || members->state_of(static_cast<uint8_t>(i)) == cluster::peer_state::up)
        up.push_back(static_cast<uint8_t>(i));
    if (up == last_up) return;
    last_up = up;
    q->update_membership(up, now);
    if (runner) runner->poke();
  }

  // The cluster as the group manager needs it, from membership and this node's own state.
  void sync_groups(time_point now) {
    std::vector<groups::peer_input> view(cfg.nodes.size());
    for (const cluster::node_view& v : members->view()) {
      if (v.id >= view.size()) continue;
      groups::peer_input& p = view[v.id];
      if (v.self) {
        p.known = true;
        p.up = joined;
        p.online = joined && state == cluster::node_state::online;
        p.quorum = holds_now(now);
        continue;
      }
      p.known = v.state != cluster::peer_state::unknown;
      p.up = v.state == cluster::peer_state::up;
      if (v.reported) {
        p.online = v.reported->state == cluster::node_state::online;
        p.quorum = v.reported->quorum;
        const auto r = v.reported->running();
        p.groups.assign(r.begin(), r.end());
      }
    }
    gm->update(view, now);
    lease_handoff(now);
  }

  // One lease for the whole cluster (witness, etcd): a group moves to a peer by handing the
  // lease over. This node stops contending once it runs no group and a group should start on a
  // peer without the lease, and contends again once a peer holds it (or after 3 lease times).
  void lease_handoff(time_point now) {
    if (!runner || !joined || leaving_in_progress) return;
    auto& lq = static_cast<quorum::lease_quorum&>(*q);
    if (!handing_off) {
      const auto peer = gm->wants_lease_handoff();
      if (!peer) return;
      handing_off = true;
      const auto ttl = cfg.quorum.mode == config::quorum_mode::etcd ? cfg.quorum.etcd.lease
                                                                    : cfg.quorum.witness.lease;
      handoff_until = now + 3 * ttl;
      emit(daemon_events::lease_handoff, cluster::severity::info,
           "giving the quorum lease up so that " + *peer +
               " can take it and run the group(s) it should run");
      lq.set_contending(false, now);
      runner->poke();
      return;
    }
    bool peer_holds = false;
    for (const cluster::node_view& v : members->view()) {
      if (!v.self && v.state == cluster::peer_state::up && v.reported && v.reported->quorum)
        peer_holds = true;
    }
    if (peer_holds || now >= handoff_until) {
      handing_off = false;
      lq.set_contending(true, now);
      runner->poke();
    }
  }

  void after_input(time_point now) {
    sync_quorum(now);
    sync_groups(now);
    const time_point next = next_wakeup(now);
    if (next < timer.expiry()) arm(next);
  }

  time_point next_wakeup(time_point now) const {
    time_point next = joined ? next_round : now + std::chrono::seconds(1);
    if (auto d = members->next_deadline()) next = std::min(next, *d);
    if (!runner)
      if (auto d = q->next_deadline()) next = std::min(next, *d);
    return std::max(next, now);
  }

  void arm(time_point at) {
    timer.expires_at(at);
    timer.async_wait([this](const std::error_code& ec) {
      if (ec == asio::error::operation_aborted) return;
      on_timer();
    });
  }

  void on_timer() {
    const time_point now = clock::now();
    if (joined && now >= next_round) {
      send_round(now);
      next_round += cfg.heartbeat.interval;
      if (next_round <= now) next_round = now + cfg.heartbeat.interval;
    }
    members->tick(now);
    sync_quorum(now);
    if (!runner) q->tick(now);
    sync_groups(now);
    arm(next_wakeup(now));
  }

  // ---- joining and leaving ----
  void join(time_point now, const std::string& why) {
    if (joined) return;
    joined = true;
    state = cluster::node_state::online;
    gm->allow_starts(true);
    next_round = now;
    if (runner) {
      static_cast<quorum::lease_quorum&>(*q).set_contending(true, now);
      runner->poke();
    }
    emit(daemon_events::cluster_started, cluster::severity::info,
         "node " + opts.node + " joined cluster " + cfg.name + " (" + why + ")");
    arm(now);
  }

  // Leaves the cluster: stops this node's groups first (peers see the node `stopping`, so none
  // of them counts it as a place to run a group), then announces `leaving`. `done` runs once
  // the node has left (at once when it is not joined).
  void leave(time_point now, const std::string& why, std::function<void()> done = {}) {
    if (done) on_left.push_back(std::move(done));
    if (!joined) {
      finish_left();
      return;
    }
    if (leaving_in_progress) return;
    leaving_in_progress = true;
    state = cluster::node_state::stopping;
    send_round(now);
    gm->stop_all(why, [this, why] { announce_leaving(clock::now(), why); });
  }

  void announce_leaving(time_point now, const std::string& why) {
    leaving_in_progress = false;
    if (!joined) {
      finish_left();
      return;
    }
    state = cluster::node_state::leaving;
    handing_off = false;
    send_round(now);  // twice: one lost datagram must not cost the peers a timeout
    send_round(now);
    joined = false;
    if (runner) {
      static_cast<quorum::lease_quorum&>(*q).set_contending(false, now);
      runner->poke();
    }
    emit(daemon_events::cluster_stopped, cluster::severity::info,
         "node " + opts.node + " left cluster " + cfg.name + " (" + why + ")");
    arm(next_wakeup(now));
    finish_left();
  }

  void finish_left() {
    auto waiters = std::move(on_left);
    on_left.clear();
    for (auto& w : waiters)
      w();
  }

  // Quorum as the node acts on it: only while it takes part in the cluster.
  bool holds_now(time_point now) const { return joined && q->holds(now); }

  void on_quorum_lost(const quorum::loss& l) {
    last_loss = l;
    // Leaving (or handing the lease to a peer) gives the lease up on purpose: that is not a loss
    // to react to (no fence).
    if (!joined || shutting_down || handing_off) return;
    const auto budget = std::chrono::duration_cast<milliseconds>(l.stop_by - l.at).count();
    emit(daemon_events::groups_stop, cluster::severity::error,
         "quorum lost (" + l.reason + "): this node's failover groups must stop within " +
             std::to_string(budget) + " ms" +
             (gm->any_active() ? "; stopping them now" : "; none is running on it"));
    // Placement stops every active group of a node without quorum.
    asio::post(io, [this] { sync_groups(clock::now()); });
    if (cfg.quorum.on_loss.action == config::loss_action::fence)
      run_fence(l.reason, std::chrono::duration_cast<milliseconds>(l.stop_by - l.at));
  }

  void run_fence(const std::string& reason, milliseconds deadline) {
    const std::string cmd = cfg.quorum.on_loss.fence_command;
    emit(daemon_events::fence, cluster::severity::warning,
         "running the fence command (" + reason + "): " + cmd);
    const std::string cluster_name = cfg.name, node = opts.node;
    // Bounded by the loss's stop deadline (a lease's may be shorter than stop_timeout).
    const auto budget = std::max(deadline, milliseconds(100));
    asio::post(fence_worker, [this, cmd, reason, cluster_name, node, budget] {
      run_result r;
      std::string error;
      try {
        // The command learns what is going on from its environment.
        r = run({"/usr/bin/env", "TANDEM_CLUSTER=" + cluster_name, "TANDEM_NODE=" + node,
                 "TANDEM_REASON=" + reason, "/bin/sh", "-c", cmd},
                budget);
      } catch (const std::exception& e) {
        error = e.what();
      }
      asio::post(io, [this, cmd, r, error] {
        if (!error.empty() || r.timed_out || !r.status.ok()) {
          emit(daemon_events::fence_failed, cluster::severity::error,
               "the fence command failed (" +
                   (!error.empty() ? error
                    : r.timed_out  ? "timed out"
                                   : r.status.describe()) +
                   "): " + cmd + (r.output.empty() ? "" : "; output: " + r.output.substr(0, 400)));
        } else {
          emit(daemon_events::fence, cluster::severity::warning,
               "the fence command succeeded: " + cmd);
        }
      });
    });
  }

  void finish_shutdown(time_point deadline, std::shared_ptr<asio::steady_timer> t,
                       std::function<void()> done) {
    const time_point n = clock::now();
    const auto* lq = runner ? static_cast<const quorum::lease_quorum*>(q.get()) : nullptr;
    const bool releasing = lq != nullptr && (lq->in_flight() || lq->epoch() != 0);
    // The last alerts (stopping, cluster_stopped) are worth the wait too.
    bool alerting = false;
    if (webhooks) {
      for (const alerts::webhook_stats& w : webhooks->stats())
        alerting |= w.queued > 0;
    }
    if (sns) {
      for (const alerts::sns_stats& topic : sns->stats())
        alerting |= topic.queued > 0;
    }
    if ((releasing || alerting) && n < deadline) {
      t->expires_after(milliseconds(20));
      t->async_wait([this, deadline, t, done = std::move(done)](const std::error_code&) mutable {
        finish_shutdown(deadline, t, std::move(done));
      });
      return;
    }
    timer.cancel();
    if (runner) runner->stop();
    if (probes) probes->stop();
    if (webhooks) webhooks->stop();
    if (sns) sns->stop();
    if (cloudwatch) cloudwatch->stop();
    for (auto& p : retired_probes)
      p->stop();
    for (auto& w : retired_webhooks)
      w->stop();
    for (auto& d : retired_sns)
      d->stop();
    for (auto& c : retired_cloudwatch)
      c->stop();
    for (auto& lk : links) {
      std::error_code ec;
      lk->socket.close(ec);
    }
    if (http) http->stop();
    api.reset();
    done();
  }

  // ---- views ----
  json quorum_json(time_point now) const {
    const quorum::status s = q->state(now);
    json j = {{"mode", quorum::to_string(s.kind)},
              {"holds", joined && s.holds},
              {"detail", s.detail},
              {"up", s.up},
              {"configured", s.configured},
              {"needed", s.needed},
              {"partition", quorum::to_string(s.partition)}};
    if (!s.holder.empty()) j["holder"] = s.holder;
    if (s.epoch != 0) j["epoch"] = s.epoch;
    if (s.valid_until) {
      j["valid_for_ms"] = ms_since(now, *s.valid_until);
      j["valid_until_mono_ns"] = mono_ns(*s.valid_until);
    }
    j["now_mono_ns"] = mono_ns(now);
    if (s.stop_by) j["stop_by_ms"] = ms_since(now, *s.stop_by);
    return j;
  }

  json status_json() const {
    const time_point now = clock::now();
    json nodes = json::array();
    for (const cluster::node_view& v : members->view()) {
      json n = {{"id", v.id},
                {"name", v.name},
                {"self", v.self},
                {"state", v.self ? (joined ? "up" : "stopped") : cluster::to_string(v.state)},
                {"pending", v.pending}};
      if (v.last_rx) n["last_heard_ms"] = ms_since(*v.last_rx, now);
      if (v.reported) {
        // What that node sees of every other: every node can show the whole cluster.
        json sees = json::object();
        for (const cluster::node_report& r : v.reported->peers()) {
          if (r.node < cfg.nodes.size()) sees[cfg.nodes[r.node].name] = cluster::to_string(r.state);
        }
        n["reported"] = {{"state", cluster::to_string(v.reported->state)},
                         {"quorum", v.reported->quorum},
                         {"config_digest", hex32(v.reported->config_digest)},
                         {"sees", sees}};
        if (v.reported_at) n["reported"]["age_ms"] = ms_since(*v.reported_at, now);
      }
      json ls = json::array();
      for (size_t l = 0; l < links.size(); ++l) {
        if (v.self || (v.links & (1u << l)) == 0) continue;
        const cluster::link_view& lv = v.link[l];
        json lj = {{"link", l}, {"name", links[l]->name}, {"state", to_string(lv.state)}};
        if (lv.last_rx) lj["last_heard_ms"] = ms_since(*lv.last_rx, now);
        if (lv.rtt)
          lj["rtt_us"] = std::chrono::duration_cast<std::chrono::microseconds>(*lv.rtt).count();
        ls.push_back(lj);
      }
      n["links"] = ls;
      if (!v.self) n["counters"] = counters_json(v.counters);
      nodes.push_back(n);
    }
    json lks = json::array();
    for (const auto& lk : links) {
      json lj = {{"link", lk->index},
                 {"name", lk->name},
                 {"address", lk->local.address().to_string()},
                 {"port", lk->local.port()},
                 {"sent", lk->tx},
                 {"send_errors", lk->tx_errors},
                 {"received", counters_json(members->link_counters(lk->index))}};
      if (!lk->last_tx_error.empty()) lj["last_send_error"] = lk->last_tx_error;
      lks.push_back(lj);
    }
    json j = {{"ok", true},
              {"cluster", cfg.name},
              {"node", opts.node},
              {"node_id", self},
              {"state", joined ? cluster::to_string(state) : "stopped"},
              {"incarnation", incarnation},
              {"config_digest", hex32(digest)},
              {"config_file", opts.config_file},
              {"uptime_s", ms_since(started, now) / 1000},
              {"heartbeat",
               {{"interval_ms", cfg.heartbeat.interval.count()},
                {"timeout_ms", cfg.heartbeat.timeout.count()}}},
              {"quorum", quorum_json(now)},
              {"nodes", nodes},
              {"groups", gm->status(now)["groups"]},
              {"links", lks},
              {"unattributed", counters_json(members->unattributed_counters())},
              {"webhooks", webhooks_json()},
              {"sns", sns_json()},
              {"cloudwatch", cloudwatch_json()},
              {"last_event", events.last_serial()}};
    return j;
  }

  json webhooks_json() const {
    json out = json::array();
    if (!webhooks) return out;
    for (const alerts::webhook_stats& w : webhooks->stats()) {
      json j = {{"url", w.url},
                {"sent", w.sent},
                {"failed_attempts", w.failed_attempts},
                {"failed", w.failed},
                {"dropped", w.dropped},
                {"queued", w.queued},
                {"last_status", w.last_status}};
      if (!w.last_error.empty()) j["last_error"] = w.last_error;
      out.push_back(j);
    }
    return out;
  }

  json sns_json() const {
    json out = json::array();
    if (!sns) return out;
    for (const alerts::sns_stats& t : sns->stats()) {
      json j = {{"topic_arn", t.topic_arn},
                {"sent", t.sent},
                {"failed", t.failed},
                {"dropped", t.dropped},
                {"queued", t.queued}};
      if (!t.last_message_id.empty()) j["last_message_id"] = t.last_message_id;
      if (!t.last_error.empty()) j["last_error"] = t.last_error;
      out.push_back(j);
    }
    return out;
  }

  // null when CloudWatch is not configured.
  json cloudwatch_json() const {
    if (!cloudwatch) return nullptr;
    const alerts::cloudwatch_stats s = cloudwatch->stats();
    json j = {{"namespace", s.metric_namespace},  {"datums_sent", s.datums_sent},
              {"datums_failed", s.datums_failed}, {"datums_dropped", s.datums_dropped},
              {"buffered", s.buffered},           {"calls", s.calls},
              {"failed_calls", s.failed_calls}};
    if (!s.last_error.empty()) j["last_error"] = s.last_error;
    return j;
  }

  std::string metrics_text() const {
    const time_point now = clock::now();
    metrics_writer m;
    m.gauge("tandem_up", "1 while tandemd runs", 1, {});
    m.gauge("tandem_cluster_joined", "1 while this node takes part in the cluster", joined ? 1 : 0,
            {});
    m.gauge("tandem_quorum_held", "1 while this node holds quorum", holds_now(now) ? 1 : 0, {});
    for (const cluster::node_view& v : members->view()) {
      if (v.self) continue;
      m.gauge("tandem_node_up", "1 while heartbeats from the node arrive",
              v.state == cluster::peer_state::up ? 1 : 0, {{"node", v.name}});
      for (size_t l = 0; l < links.size(); ++l) {
        if ((v.links & (1u << l)) == 0) continue;
        const cluster::link_view& lv = v.link[l];
        m.gauge("tandem_link_up", "1 while heartbeats arrive on the interconnect",
                lv.state == cluster::link_state::up ? 1 : 0,
                {{"node", v.name}, {"link", links[l]->name}});
        if (lv.rtt)
          m.gauge("tandem_link_rtt_seconds", "smoothed heartbeat round trip",
                  std::chrono::duration<double>(*lv.rtt).count(),
                  {{"node", v.name}, {"link", links[l]->name}});
      }
    }
    for (const auto& lk : links) {
      const cluster::heartbeat_counters& c = members->link_counters(lk->index);
      m.counter("tandem_heartbeats_sent_total", "heartbeats sent", static_cast<double>(lk->tx),
                {{"link", lk->name}});
      m.counter("tandem_heartbeat_send_errors_total", "heartbeats the kernel refused",
                static_cast<double>(lk->tx_errors), {{"link", lk->name}});
      const std::pair<const char*, uint64_t> rx[] = {{"accepted", c.accepted},
                                                     {"pending", c.pending},
                                                     {"dropped_auth", c.dropped_auth},
                                                     {"dropped_replay", c.dropped_replay},
                                                     {"dropped_malformed", c.dropped_malformed},
                                                     {"dropped_foreign", c.dropped_foreign}};
      for (const auto& [result, count] : rx)
        m.counter("tandem_heartbeats_received_total", "heartbeats received, by verdict",
                  static_cast<double>(count), {{"link", lk->name}, {"result", result}});
    }
    for (auto s : {cluster::severity::info, cluster::severity::warning, cluster::severity::error})
      m.counter("tandem_events_total", "events raised, by severity",
                static_cast<double>(events.count(s)),
                {{"severity", std::string(cluster::to_string(s))}});
    m.counter("tandem_api_http_requests_total", "HTTP API requests answered",
              static_cast<double>(http_requests), {});
    m.counter("tandem_api_http_refused_total", "HTTP API requests refused (token)",
              static_cast<double>(http_refused), {});
    return m.text();
  }

  // ---- the HTTP API ----
  witness::http_response serve_http(const witness::http_request& r) {
    witness::http_response res;
    const auto auth = r.header("authorization");
    const std::string expected = "Bearer " + http_token;
    if (!auth || auth->size() != expected.size() ||
        CRYPTO_memcmp(auth->data(), expected.data(), expected.size()) != 0) {
      ++http_refused;
      res.status = 401;
      res.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"tandemd\"");
      res.body = json{{"ok", false}, {"error", "a valid bearer token is required"}}.dump(
          -1, ' ', false, json::error_handler_t::replace);
      return res;
    }
    ++http_requests;
    const std::string_view path = r.path();
    if (r.method != "GET") {
      res.status = 405;
      res.headers.emplace_back("Allow", "GET");
      res.body = json{{"ok", false}, {"error", "only GET is served"}}.dump(
          -1, ' ', false, json::error_handler_t::replace);
      return res;
    }
    if (path == "/metrics") {
      res.content_type = "text/plain; version=0.0.4";
      res.body = metrics_text();
    } else if (path == "/v1/status") {
      res.body = safe_dump(status_json());
    } else if (path == "/v1/events") {
      uint64_t since = 0;
      size_t limit = 1000;
      const std::string target = r.target;
      const auto qpos = target.find('?');
      if (qpos != std::string::npos) {
        std::istringstream qs(target.substr(qpos + 1));
        std::string kv;
        while (std::getline(qs, kv, '&')) {
          const auto eq = kv.find('=');
          if (eq == std::string::npos) continue;
          const std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
          uint64_t n = 0;
          const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
          const bool number = ec == std::errc() && end == v.data() + v.size() && !v.empty();
          if (number && k == "since") since = n;
          if (number && k == "limit") limit = static_cast<size_t>(std::min<uint64_t>(n, 10000));
          if (!number && (k == "since" || k == "limit")) {
            res.status = 400;
            res.body = json{{"ok", false}, {"error", "bad number for " + k + ": " + v}}.dump(
                -1, ' ', false, json::error_handler_t::replace);
            return res;
          }
        }
      }
      res.body = safe_dump(json{
          {"ok", true}, {"events", events.since(since, limit)}, {"last", events.last_serial()}});
    } else {
      res.status = 404;
      res.body = safe_dump(
          json{{"ok", false}, {"error", "no such resource; try /v1/status, /v1/events, /metrics"}});
    }
    return res;
  }

  // ---- reload ----
  json reload() {
    const time_point now = clock::now();
    config::cluster_load_result loaded = config::parse_cluster_file(opts.config_file);
    if (!loaded.ok()) {
      emit(daemon_events::reload_refused, cluster::severity::warning,
           opts.config_file + " is invalid; the running configuration stays");
      return {{"ok", false},
              {"error",
               opts.config_file + " is invalid; nothing changed:\n" + loaded.diag.to_string()}};
    }
    if (loaded.config.find_node(opts.node) == nullptr) {
      return {{"ok", false},
              {"error", opts.config_file + " no longer has node '" + opts.node +
                            "'; nothing changed (remove a node by stopping its daemon first)"}};
    }
    config::cluster_config next = config::effective_config(loaded.config, opts.node);
    if (!opts.replicator_socket.empty()) next.mirrors.control_socket = opts.replicator_socket;
    const config::reload_plan plan = config::diff_for_reload(cfg, next);
    json changes = json::array();
    for (const config::config_change& c : plan.changes) {
      changes.push_back({{"path", c.path},
                         {"before", c.before},
                         {"after", c.after},
                         {"kind", config::to_string(c.kind)},
                         {"reason", c.reason}});
    }
    if (plan.empty()) return {{"ok", true}, {"changed", false}, {"changes", changes}};
    if (!plan.live_applicable()) {
      std::string why;
      for (const config::config_change* c : plan.of_kind(config::change_kind::daemon_restart))
        why += "\n  " + c->path + ": " + c->reason;
      emit(daemon_events::reload_refused, cluster::severity::warning,
           "reload of " + opts.config_file +
               " refused: these changes need tandemd restarted:" + why);
      return {{"ok", false},
              {"error",
               "nothing changed: these changes need tandemd restarted (on every node, "
               "one at a time):" +
                   why},
              {"changes", changes}};
    }
    if (const auto blocked = gm->blocked_by_running(plan.groups_to_restart()); !blocked.empty()) {
      std::string list;
      for (const std::string& g : blocked)
        list += (list.empty() ? "" : ", ") + g;
      emit(daemon_events::reload_refused, cluster::severity::warning,
           "reload of " + opts.config_file + " refused: the resources of running group(s) " + list +
               " changed");
      return {{"ok", false},
              {"error", "nothing changed: the resources of group(s) " + list +
                            " changed while they run on this node; stop them first "
                            "(tandemctl group stop GROUP), reload, then start them"},
              {"changes", changes}};
    }
    // Everything is live: apply what tandemd itself uses and hand the groups and monitors to
    // the group manager; the rest (the replicator's resync rates) is read from cfg when it is
    // next needed.
    const bool timing = next.heartbeat.interval != cfg.heartbeat.interval ||
                        next.heartbeat.timeout != cfg.heartbeat.timeout;
    const bool targets = next.quorum.resolution.ping != cfg.quorum.resolution.ping ||
                         next.quorum.resolution.http != cfg.quorum.resolution.http ||
                         next.quorum.resolution.timeout != cfg.quorum.resolution.timeout;
    const nlohmann::ordered_json next_alerts = config::to_json(next).at("alerts");
    const nlohmann::ordered_json cur_alerts = config::to_json(cfg).at("alerts");
    auto changed = [&](const char* key) {
      return next_alerts.value(key, nlohmann::ordered_json()) !=
             cur_alerts.value(key, nlohmann::ordered_json());
    };
    const bool hooks = changed("webhooks");
    const bool topics = changed("sns");
    const bool metrics = changed("cloudwatch");
    // Everything that can fail happens before anything changes: all or nothing.
    uint32_t next_digest = 0;
    std::unique_ptr<alerts::webhook_dispatcher> new_hooks;
    std::unique_ptr<alerts::sns_dispatcher> new_sns;
    std::unique_ptr<alerts::cloudwatch_publisher> new_cloudwatch;
    std::unique_ptr<quorum::prober> new_probes;
    const quorum::partition_config pc = partition_of(next.quorum);
    try {
      next_digest = config_digest(loaded.config);
      if (timing && next.heartbeat.timeout < 2 * next.heartbeat.interval)
        throw std::invalid_argument("the heartbeat timeout must be at least twice the interval");
      if (targets) {
        // New targets count as unreachable until probed: with peers down, applying them now
        // would make a node that holds quorum the "isolated side" for a round.
        const quorum::status st = q->state(now);
        const auto& old = q->partition_targets();
        bool unprobed = false;
        for (const auto& t : pc.targets) {
          unprobed |= std::none_of(old.begin(), old.end(), [&](const quorum::probe_target& o) {
            return o.kind == t.kind && o.address == t.address;
          });
        }
        if (unprobed && holds_now(now) && st.up < st.configured) {
          throw std::runtime_error(
              "the new partition-resolution targets have not been probed yet and nodes are "
              "down, so this node would count as isolated and give quorum up; reload again "
              "once every node is up");
        }
        if (!pc.targets.empty()) {
          new_probes = std::make_unique<quorum::prober>(
              io.get_executor(), pc.targets, next.quorum.resolution.timeout,
              std::chrono::seconds(1), [this](const quorum::probe_result& r) {
                const time_point t = clock::now();
                q->update_reachability(std::span<const quorum::probe_result>(&r, 1), t);
                if (runner) runner->poke();
                after_input(t);
              });
        }
      }
      if (hooks && !next.alerts.webhooks.empty())
        new_hooks = std::make_unique<alerts::webhook_dispatcher>(io.get_executor(), next.alerts);
      if (topics) new_sns = make_sns(next.alerts);
      if (metrics) new_cloudwatch = make_cloudwatch(next.alerts);
    } catch (const std::exception& e) {
      emit(daemon_events::reload_refused, cluster::severity::warning,
           "reload of " + opts.config_file + " refused: " + e.what());
      return {{"ok", false}, {"error", std::string("nothing changed: ") + e.what()}};
    }
    if (timing) members->set_timing(next.heartbeat.interval, next.heartbeat.timeout);
    if (targets) {
      q->set_partition(pc, now);
      // Retired, not stopped: stopping waits for a probe in flight, which must not stall
      // heartbeats; retired objects are stopped at shutdown.
      if (probes) {
        probes->retire();
        retired_probes.push_back(std::move(probes));
      }
      probes = std::move(new_probes);
      if (probes) probes->start();
    }
    if (hooks) {
      if (webhooks) {
        webhooks->retire();
        retired_webhooks.push_back(std::move(webhooks));
      }
      webhooks = std::move(new_hooks);
      if (webhooks) {
        webhooks->on_failure([this](const alerts::delivery_failure& f) {
          emit(daemon_events::alert_failed, cluster::severity::warning,
               "alert " + std::to_string(f.serial) + " (" + f.name +
                   ") could not be delivered to " + f.url + " after " + std::to_string(f.attempts) +
                   " attempts: " + f.error);
        });
      }
    }
    if (topics) {
      if (sns) {
        sns->retire();
        retired_sns.push_back(std::move(sns));
      }
      sns = std::move(new_sns);
    }
    if (metrics) {
      if (cloudwatch) {
        cloudwatch->retire();
        retired_cloudwatch.push_back(std::move(cloudwatch));
      }
      cloudwatch = std::move(new_cloudwatch);
      if (cloudwatch) cloudwatch->start();
    }
    cfg = std::move(next);
    file_cfg = std::move(loaded.config);
    digest = next_digest;
    gm->reconfigure(cfg);
    if (timing && joined) {
      next_round = now;
      arm(now);
    }
    std::string list;
    for (const config::config_change& c : plan.changes)
      list += (list.empty() ? "" : ", ") + c.path;
    emit(daemon_events::config_reloaded, cluster::severity::info,
         "reloaded " + opts.config_file + " (config digest " + hex32(digest) + "): " + list);
    return {
        {"ok", true}, {"changed", true}, {"changes", changes}, {"config_digest", hex32(digest)}};
  }

  // ---- the unix-socket API ----
  json execute(const json& req) {
    const std::string cmd = req.value("cmd", std::string());
    const time_point now = clock::now();
    if (cmd == "status") return status_json();
    if (cmd == "events") {
      for (const char* k : {"since", "limit"}) {
        if (req.contains(k) && !req[k].is_number_unsigned()) {
          return {{"ok", false},
                  {"error", std::string("\"") + k + "\" must be a whole number >= 0"}};
        }
      }
      const uint64_t since = req.value("since", uint64_t{0});
      const size_t limit = std::min<size_t>(req.value("limit", size_t{1000}), 10000);
      return {{"ok", true},
              {"events", events.since(since, limit)},
              {"first", events.first_serial()},
              {"last", events.last_serial()}};
    }
    if (shutting_down && (cmd == "cluster_start" || cmd == "reload")) {
      return {{"ok", false}, {"error", "tandemd is stopping"}};
    }
    if (cmd == "cluster_start") {
      if (joined) return {{"ok", true}, {"changed", false}, {"state", "online"}};
      join(now, "tandemctl cluster start");
      return {{"ok", true}, {"changed", true}, {"state", "online"}};
    }
    if (cmd == "cluster_stop") {
      if (!joined) return {{"ok", true}, {"changed", false}, {"state", "stopped"}};
      leave(now, "tandemctl cluster stop");
      // Stopping the groups takes as long as their deactivation: `status` shows "stopping"
      // until the node has left ("stopped").
      return {{"ok", true}, {"changed", true}, {"state", joined ? "stopping" : "stopped"}};
    }
    if (cmd == "group_status") {
      json ans = gm->status(now);
      ans["ok"] = true;
      ans["node"] = opts.node;
      return ans;
    }
    if (cmd == "group_start" || cmd == "group_stop" || cmd == "group_move") {
      for (const char* k : {"group", "node"}) {
        if (req.contains(k) && !req[k].is_string())
          return {{"ok", false}, {"error", std::string("\"") + k + "\" must be a string"}};
      }
      if (!joined) {
        return {{"ok", false},
                {"error", "this node is not in the cluster; `tandemctl cluster start` first"}};
      }
      json ans = gm->command(cmd.substr(6), req.value("group", std::string()),
                             req.value("node", std::string()));
      // Tell the peers at once: the command travels in the heartbeats.
      if (ans.value("ok", false)) {
        next_round = now;
        arm(now);
      }
      return ans;
    }
    if (cmd == "config") {
      json j = {{"ok", true},
                {"file", opts.config_file},
                {"node", opts.node},
                {"config", config::to_json(cfg)}};
      return j;
    }
    if (cmd == "quorum") return {{"ok", true}, {"quorum", quorum_json(now)}};
    if (cmd == "reload") return reload();
    if (cmd.empty()) return {{"ok", false}, {"error", "the request has no \"cmd\""}};
    return {{"ok", false},
            {"error", "unknown command '" + cmd +
                          "' (status, events, cluster_start, cluster_stop, config, reload, quorum, "
                          "group_status, group_start, group_stop, group_move)"}};
  }
};

cluster_daemon::cluster_daemon(asio::io_context& io, daemon_options opts)
    : d_(std::make_unique<impl>(io, std::move(opts))) {
  d_->load();
  d_->build(clock::now());
}

cluster_daemon::~cluster_daemon() {
  if (d_->runner) d_->runner->stop();
  if (d_->probes) d_->probes->stop();
  if (d_->webhooks) d_->webhooks->stop();
  if (d_->sns) d_->sns->stop();
  if (d_->cloudwatch) d_->cloudwatch->stop();
  for (auto& p : d_->retired_probes)
    p->stop();
  for (auto& w : d_->retired_webhooks)
    w->stop();
  for (auto& t : d_->retired_sns)
    t->stop();
  for (auto& c : d_->retired_cloudwatch)
    c->stop();
  d_->fence_worker.join();
}

void cluster_daemon::start() {
  const time_point now = clock::now();
  for (auto& lk : d_->links)
    d_->receive_on(*lk);
  if (d_->runner) d_->runner->start();
  if (d_->probes) d_->probes->start();
  if (d_->cloudwatch) d_->cloudwatch->start();
  if (d_->http) d_->http->start();
  d_->emit(daemon_events::started, cluster::severity::info,
           "tandemd started: node " + d_->opts.node + " (id " + std::to_string(d_->self) +
               ") of cluster " + d_->cfg.name + ", incarnation " + std::to_string(d_->incarnation) +
               ", " + std::to_string(d_->links.size()) + " interconnect(s), quorum " +
               std::string(quorum::to_string(d_->q->kind())) + ", config digest " +
               hex32(d_->digest));
  if (d_->opts.start_stopped) {
    d_->arm(d_->next_wakeup(now));
  } else {
    d_->join(now, "daemon start");
  }
}

void cluster_daemon::shutdown(std::function<void()> done) {
  impl& d = *d_;
  if (d.shutting_down) return;
  d.shutting_down = true;
  const time_point now = clock::now();
  d.emit(daemon_events::stopping, cluster::severity::info, "tandemd is stopping");
  // The groups stop first (as long as their deactivation takes); then a lease is given back by
  // the runner's next request, and queued alerts go out: wait for both, at most 2 s.
  d.leave(now, "daemon stopping", [&d, done = std::move(done)]() mutable {
    d.finish_shutdown(clock::now() + std::chrono::seconds(2),
                      std::make_shared<asio::steady_timer>(d.io), std::move(done));
  });
}

json cluster_daemon::execute(const json& request) {
  return d_->execute(request);
}

const std::string& cluster_daemon::socket_path() const {
  return d_->socket_path;
}

}  // namespace tandem::ctl::daemon
