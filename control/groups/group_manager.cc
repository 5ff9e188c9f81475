// SPDX-License-Identifier: Apache-2.0
// The group manager (group_manager.h): placement, activation, monitors and recovery on one node.
#include "control/groups/group_manager.h"

#include <algorithm>
#include <map>
#include <set>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/thread_pool.hpp>

#include "control/groups/monitor.h"
#include "control/groups/placement.h"
#include "control/groups/resource.h"

namespace tandem::ctl::groups {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;
using sev = cluster::severity;

// A monitor counts as recovered (its restart budget refills) after this many healthy checks in
// a row.
constexpr int healthy_checks_to_reset = 10;

bool runs(group_state s) noexcept {
  return s == group_state::starting || s == group_state::online || s == group_state::stopping;
}

std::string_view to_word(config::final_action a) {
  return config::to_string(a);
}

int64_t ms_between(time_point a, time_point b) {
  return std::chrono::duration_cast<milliseconds>(b - a).count();
}

// One resource action's outcome, as the worker reports it back.
struct step_report {
  std::string resource;
  bool start = true;
  bool ok = false;
  int attempt = 1;
  std::string message;
  int64_t elapsed_ms = 0;
};

}  // namespace

struct group_manager::impl {
  using strand_t = asio::strand<asio::thread_pool::executor_type>;

  struct resource_rt {
    config::resource_config conf;
    std::unique_ptr<resource> res;
    group_state state = group_state::offline;
    std::string error;
  };

  struct group_rt {
    config::group_config conf;
    uint16_t id = 0;
    std::vector<resource_rt> resources;  // start order
    std::unique_ptr<strand_t> strand;
    group_state state = group_state::offline;
    intent_record intent;
    uint8_t failovers = 0;
    bool busy = false;
    std::string unavailable;       // why it cannot run here ("" when it can)
    std::string reason;            // the last placement reason
    std::string error;             // the last failure here
    std::optional<uint8_t> owner;  // another node that runs it, as last seen
    bool owner_lost = false;       // that node disappeared while running it
    bool owner_failed = false;     // that node gave it up after a failure (failover)
    bool conflict = false;         // another node ran it while it ran here
    time_point takeover_after{};
    std::optional<uint8_t> target;
    time_point since{};  // of the current state here
    time_point action_started{};
    std::string action_event;  // why the current or last action ran
    int restarts = 0;          // whole-group restarts by monitors (for status)

    resource_rt* find(std::string_view name) {
      for (resource_rt& r : resources)
        if (r.conf.name == name) return &r;
      return nullptr;
    }
  };

  struct monitor_rt {
    config::monitor_config conf;
    std::unique_ptr<monitor> mon;
    std::string unavailable;
    std::unique_ptr<asio::steady_timer> timer;
    std::unique_ptr<strand_t> strand;
    bool in_flight = false;
    bool retired = false;    // replaced by a reload
    bool exhausted = false;  // its final action ran: quiet until it is healthy again
    int failures = 0;        // consecutive
    int healthy = 0;         // consecutive
    int restarts = 0;        // recovery restarts used
    bool failing = false;
    bool unverified = false;  // the last check could not be made (reported once per streak)
    uint64_t checks = 0;
    std::string last_message;
    std::optional<time_point> last_check;
    // Woken (set_wake) while a check was in flight: check again as soon as it reports.
    bool wake_pending = false;
  };

  asio::io_context& io;
  config::cluster_config cfg;
  std::string node;
  uint8_t self;
  manager_hooks hooks;
  manager_options opts;
  asio::thread_pool actions{4};
  asio::thread_pool checks{4};
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  std::vector<std::unique_ptr<group_rt>> groups;
  std::vector<std::unique_ptr<monitor_rt>> monitors;
  std::vector<std::unique_ptr<monitor_rt>> retired_monitors;
  std::vector<peer_input> view;
  std::vector<bool> seen_down;  // per node: known and not up in an earlier view
  bool starts_allowed = true;
  std::vector<std::function<void()>> idle_waiters;
  std::vector<cluster::group_report> last_reports;

  impl(asio::io_context& io_, const config::cluster_config& c, std::string n, uint8_t s,
       manager_hooks h, manager_options o)
      : io(io_), cfg(c), node(std::move(n)), self(s), hooks(std::move(h)), opts(std::move(o)) {}

  ~impl() {
    *alive = false;
    for (auto& m : monitors)
      if (m->timer) m->timer->cancel();
    for (auto& m : retired_monitors)
      if (m->timer) m->timer->cancel();
    actions.join();
    checks.join();
  }

  // ---- events ----
  void emit(uint32_t id, sev level, std::string message) {
    if (!hooks.emit) return;
    cluster::event e;
    e.id = id;
    e.level = level;
    e.module = group_module;
    e.message = std::move(message);
    e.time = clock::now();
    hooks.emit(e);
  }

  std::string name_of(uint8_t id) const {
    return id < cfg.nodes.size() ? cfg.nodes[id].name : "node " + std::to_string(id);
  }
  std::optional<uint8_t> id_of(std::string_view name) const {
    for (size_t i = 0; i < cfg.nodes.size(); ++i)
      if (cfg.nodes[i].name == name) return static_cast<uint8_t>(i);
    return std::nullopt;
  }

  // ---- set-up ----
  void build_group(group_rt& g) {
    g.resources.clear();
    g.unavailable.clear();
    g.id = cluster::group_id_of(g.conf.name);
    for (const config::resource_config* rc : g.conf.start_order()) {
      resource_rt r;
      r.conf = *rc;
      g.resources.push_back(std::move(r));
    }
    resource_env env;
    env.cfg = &cfg;
    env.node = node;
    env.log_dir = opts.log_dir;
    group_rt* gp = &g;
    env.find = [gp](std::string_view name) -> resource* {
      resource_rt* r = gp->find(name);
      return r != nullptr ? r->res.get() : nullptr;
    };
    for (resource_rt& r : g.resources) {
      try {
        r.res = make_resource(r.conf, env);
      } catch (const std::exception& e) {
        g.unavailable = e.what();
        break;
      }
    }
    if (!g.unavailable.empty()) {
      g.state = group_state::failed;
      g.error = g.unavailable;
      emit(group_events::unavailable, sev::error,
           "group " + g.conf.name + " cannot run on " + node + ": " + g.unavailable);
    }
  }

  group_rt* find_group(std::string_view name) {
    for (auto& g : groups)
      if (g->conf.name == name) return g.get();
    return nullptr;
  }

  void build_monitor(monitor_rt& m) {
    monitor_env env;
    env.cfg = &cfg;
    env.node = node;
    group_rt* g = m.conf.group.empty() ? nullptr : find_group(m.conf.group);
    env.find = [g](std::string_view name) -> resource* {
      if (g == nullptr) return nullptr;
      resource_rt* r = g->find(name);
      return r != nullptr ? r->res.get() : nullptr;
    };
    m.unavailable.clear();
    try {
      m.mon = make_monitor(m.conf, env);
      // An event-driven monitor saw a change: check at once rather than at the next interval.
      m.mon->set_wake([this, &m, token = std::weak_ptr<bool>(alive)] {
        asio::post(io, [this, &m, token] {
          auto a = token.lock();
          if (!a || !*a || m.retired) return;
          if (m.in_flight) {
            m.wake_pending = true;  // that check may have read the state before the change
            return;
          }
          tick(m);
        });
      });
    } catch (const std::exception& e) {
      m.unavailable = e.what();
      emit(group_events::unavailable, sev::error,
           "monitor " + m.conf.name + " cannot run on " + node + ": " + m.unavailable);
    }
  }

  void build() {
    for (const config::group_config& gc : cfg.groups) {
      auto g = std::make_unique<group_rt>();
      g->conf = gc;
      g->strand = std::make_unique<strand_t>(asio::make_strand(actions.get_executor()));
      g->since = clock::now();
      build_group(*g);
      groups.push_back(std::move(g));
    }
    for (const config::monitor_config& mc : cfg.monitors) {
      auto m = std::make_unique<monitor_rt>();
      m->conf = mc;
      m->timer = std::make_unique<asio::steady_timer>(io);
      m->strand = std::make_unique<strand_t>(asio::make_strand(checks.get_executor()));
      build_monitor(*m);
      monitors.push_back(std::move(m));
    }
    for (auto& m : monitors)
      schedule(*m, milliseconds(0));
  }

  // ---- the cluster view ----
  const cluster::group_report* report_of(size_t node_id, uint16_t gid) const {
    if (node_id >= view.size()) return nullptr;
    for (const cluster::group_report& r : view[node_id].groups)
      if (r.group == gid) return &r;
    return nullptr;
  }

  placement_input input_of(const group_rt& g) const {
    placement_input in;
    in.self = self;
    for (const std::string& n : g.conf.nodes)
      if (auto id = id_of(n)) in.preference.push_back(*id);
    in.autostart = g.conf.autostart;
    in.auto_failback = g.conf.failback == config::failback_policy::automatic;
    in.intent = g.intent;
    for (size_t i = 0; i < cfg.nodes.size(); ++i) {
      node_input n;
      n.id = static_cast<uint8_t>(i);
      in.names.push_back(cfg.nodes[i].name);
      if (i < view.size()) {
        const peer_input& p = view[i];
        n.known = p.known;
        n.up = p.up;
        n.online = p.online;
        n.quorum = p.quorum;
        // With one cluster-wide lease a peer can run the group once this node hands the lease
        // over, which it does only when no other group runs here.
        if (i != self && !n.quorum && opts.lease_quorum && p.up && p.online && self < view.size() &&
            view[self].quorum && !others_active_here(g)) {
          n.quorum = true;
        }
        if (i == self) {
          n.state = g.state;
        } else if (const cluster::group_report* r = report_of(i, g.id)) {
          n.state = r->state;
        }
      }
      in.nodes.push_back(n);
    }
    return in;
  }

  bool others_active_here(const group_rt& g) const {
    return std::any_of(groups.begin(), groups.end(),
                       [&](const auto& h) { return h.get() != &g && (h->busy || runs(h->state)); });
  }

  // Another node than this one could take the group over now.
  std::optional<uint8_t> other_eligible(const group_rt& g) const {
    placement_input in = input_of(g);
    in.nodes[self].state = group_state::failed;  // as if this node had given up
    in.intent.kind = in.intent.kind == group_intent::move ? group_intent::run : in.intent.kind;
    return target_of(in);
  }

  void set_state(group_rt& g, group_state s) {
    if (g.state == s) return;
    g.state = s;
    g.since = clock::now();
    publish();
  }

  void publish() {
    std::vector<cluster::group_report> r = reports();
    if (r != last_reports) {
      last_reports = r;
      if (hooks.changed) hooks.changed();
    }
  }

  std::vector<cluster::group_report> reports() const {
    std::vector<cluster::group_report> out;
    for (const auto& g : groups) {
      cluster::group_report r;
      r.group = g->id;
      r.state = g->state;
      r.failovers = g->failovers;
      r.intent = g->intent.kind;
      r.intent_seq = g->intent.kind == group_intent::none ? 0 : g->intent.seq;
      r.target = g->intent.kind == group_intent::move ? g->intent.target : 0;
      out.push_back(r);
    }
    return out;
  }

  void adopt_intent(group_rt& g, const intent_record& i, bool local) {
    if (!newer(i, g.intent)) return;
    g.intent = i;
    // An operator command starts a new episode: failures and failover counts are forgotten.
    g.failovers = 0;
    g.error.clear();
    if (g.state == group_state::failed && g.unavailable.empty()) set_state(g, group_state::offline);
    for (auto& m : monitors) {
      if (m->conf.group == g.conf.name) m->restarts = 0;
    }
    g.restarts = 0;
    if (!local) {
      emit(group_events::command, sev::info,
           "group " + g.conf.name + ": command '" +
               describe(i, i.kind == group_intent::move ? name_of(i.target) : "") +
               "' received from the cluster (seq " + std::to_string(i.seq) + ")");
    }
    publish();
  }

  void update(const std::vector<peer_input>& v, time_point now) {
    view = v;
    if (view.size() < cfg.nodes.size()) view.resize(cfg.nodes.size());
    // Nodes that were known to be down and are up again: after a partition they may have
    // claimed this node's resources meanwhile (a floating IP announced from there).
    std::string back;
    seen_down.resize(view.size(), false);
    for (size_t i = 0; i < view.size(); ++i) {
      if (i == self) continue;
      if (view[i].known && !view[i].up) {
        seen_down[i] = true;
      } else if (view[i].up && seen_down[i]) {
        seen_down[i] = false;
        back += (back.empty() ? "" : ", ") + name_of(static_cast<uint8_t>(i));
      }
    }
    for (auto& gp : groups) {
      group_rt& g = *gp;
      // Relay: the newest intent and the highest failover count any up node reports.
      for (size_t i = 0; i < view.size(); ++i) {
        if (i == self || !view[i].up) continue;
        const cluster::group_report* r = report_of(i, g.id);
        if (r == nullptr) continue;
        adopt_intent(g, {r->intent_seq, r->intent, r->target}, false);
        if (r->intent_seq == g.intent.seq && r->failovers > g.failovers) {
          g.failovers = r->failovers;
          publish();
        }
      }
      // Who runs it elsewhere, and whether that node was lost while running it.
      std::optional<uint8_t> owner;
      for (size_t i = 0; i < view.size(); ++i) {
        if (i == self || !view[i].up) continue;
        const cluster::group_report* r = report_of(i, g.id);
        if (r != nullptr && runs(r->state)) owner = static_cast<uint8_t>(i);
      }
      if (owner && runs(g.state)) {
        g.conflict = true;
      } else if (g.conflict && !owner) {
        g.conflict = false;
        // The other node gave the group up (the placement rule stopped it there): whatever it
        // announced meanwhile is to be corrected.
        if (g.state == group_state::online && !g.busy)
          reassert_group(g, "it also ran on " +
                                (g.owner ? name_of(*g.owner) : std::string("another node")) +
                                ", which stopped it");
      } else if (!runs(g.state)) {
        g.conflict = false;
      }
      if (owner) {
        g.owner = owner;
        g.owner_lost = false;
        g.owner_failed = false;
      } else if (g.owner) {
        const size_t o = *g.owner;
        const cluster::group_report* r = report_of(o, g.id);
        if (o < view.size() && !view[o].up) {
          g.owner_lost = true;
          g.takeover_after = now + opts.takeover_delay;
          if (opts.takeover_delay.count() > 0) {
            emit(group_events::waiting, sev::info,
                 "group " + g.conf.name + " ran on " + name_of(*g.owner) +
                     ", which is gone: nodes wait " +
                     std::to_string(
                         std::chrono::duration_cast<milliseconds>(opts.takeover_delay).count()) +
                     " ms (its time to stop it) before taking it over");
          }
        } else if (r != nullptr && r->state == group_state::failed) {
          g.owner_failed = true;
        }
        g.owner.reset();
      }
      decide_for(g, now);
      if (!back.empty() && g.state == group_state::online && !g.busy)
        reassert_group(g, back + (back.find(',') == std::string::npos ? " is" : " are") +
                              " back in the cluster");
    }
    publish();
  }

  // Asks the active resources of a group online here to assert themselves again (resource.h:
  // reassert), on the group's strand, after any action queued before.
  void reassert_group(group_rt& g, const std::string& why) {
    emit(group_events::reasserted, sev::info,
         "group " + g.conf.name + ": resources asserted again on " + node + " (" + why + ")");
    // The resources and their contexts are picked here: resource states belong to this thread.
    std::vector<std::pair<resource*, action_context>> active;
    for (resource_rt& r : g.resources) {
      if (r.state == group_state::online && r.res)
        active.emplace_back(r.res.get(), context_of(g, r, "reassert", r.conf.activation.timeout));
    }
    asio::post(*g.strand, [active = std::move(active), token = std::weak_ptr<bool>(alive)] {
      auto a = token.lock();
      if (!a || !*a) return;
      for (const auto& [res, ctx] : active)
        res->reassert(ctx);
    });
  }

  void decide_for(group_rt& g, time_point now) {
    if (g.busy) return;
    placement_input in = input_of(g);
    in.takeover_blocked = g.owner_lost && now < g.takeover_after;
    const placement p = decide(in, g.owner_lost || g.owner_failed);
    g.target = p.target;
    g.reason = p.reason;
    if (p.what == step::start) {
      if (!starts_allowed) {
        g.reason = "this node is stopping its groups";
        return;
      }
      if (!g.unavailable.empty()) return;
      start_group(g, p.event, std::nullopt);
    } else if (p.what == step::stop) {
      if (p.event == "conflict") {
        emit(group_events::conflict, sev::error, "group " + g.conf.name + ": " + p.reason);
      }
      stop_group(g, p.event, p.reason, {});
    }
  }

  // ---- actions (worker side) ----
  // Runs on the group's strand: starts resources [from, end) in order with their activation
  // retries; on a failure stops what it started, in reverse. Posts one report per attempt.
  void post_report(const step_report& r) {
    asio::post(io, [this, token = std::weak_ptr<bool>(alive), r] {
      auto a = token.lock();
      if (!a || !*a) return;
      on_step(r);
    });
  }

  action_context context_of(const group_rt& g, const resource_rt& r, const std::string& event,
                            milliseconds timeout) const {
    action_context ctx;
    ctx.cluster = cfg.name;
    ctx.node = node;
    ctx.group = g.conf.name;
    ctx.resource = r.conf.name;
    ctx.event = event;
    ctx.timeout = timeout;
    return ctx;
  }

  struct job_result {
    bool ok = true;
    std::string failed_resource;
    std::string message;
  };

  // Worker: start resources [from, end).
  job_result run_start(group_rt& g, size_t from, const std::string& event) {
    job_result out;
    size_t started = from;
    // Checks that change nothing (a floating IP's duplicate-address probe) run meanwhile, while
    // the resources before them start.
    for (size_t i = from; i < g.resources.size(); ++i) {
      resource_rt& r = g.resources[i];
      r.res->prepare(context_of(g, r, event, r.conf.activation.timeout));
    }
    for (size_t i = from; i < g.resources.size(); ++i) {
      resource_rt& r = g.resources[i];
      const config::activation_policy& pol = r.conf.activation;
      bool ok = false;
      for (int attempt = 1; attempt <= pol.retries + 1 && !ok; ++attempt) {
        const time_point t0 = clock::now();
        const action_result res = r.res->start(context_of(g, r, event, pol.timeout));
        ok = res.ok;
        post_report(
            {r.conf.name, true, res.ok, attempt, res.message, ms_between(t0, clock::now())});
        if (!ok) out.message = res.message;
      }
      if (!ok) {
        out.ok = false;
        out.failed_resource = r.conf.name;
        break;
      }
      started = i + 1;
    }
    if (!out.ok) {
      // Undo: what this job started, newest first, then the failed one (it may be half up).
      for (size_t i = started + 1; i-- > from;) {
        resource_rt& r = g.resources[i];
        const time_point t0 = clock::now();
        const action_result res = r.res->stop(context_of(g, r, event, r.conf.deactivation.timeout));
        post_report({r.conf.name, false, res.ok, 1, res.message, ms_between(t0, clock::now())});
      }
    }
    return out;
  }

  // Worker: stop resources [from, end) in reverse, with their deactivation retries. Stops at
  // the first resource that cannot be stopped (the ones below it are still in use).
  job_result run_stop(group_rt& g, size_t from, const std::string& event) {
    job_result out;
    for (size_t i = g.resources.size(); i-- > from;) {
      resource_rt& r = g.resources[i];
      const config::deactivation_policy& pol = r.conf.deactivation;
      bool ok = false;
      for (int attempt = 1; attempt <= pol.retries + 1 && !ok; ++attempt) {
        const time_point t0 = clock::now();
        const action_result res = r.res->stop(context_of(g, r, event, pol.timeout));
        ok = res.ok;
        post_report(
            {r.conf.name, false, res.ok, attempt, res.message, ms_between(t0, clock::now())});
        if (!ok) out.message = res.message;
      }
      if (!ok) {
        out.ok = false;
        out.failed_resource = r.conf.name;
        return out;
      }
    }
    return out;
  }

  void on_step(const step_report& s) {
    for (auto& g : groups) {
      resource_rt* r = g->find(s.resource);
      if (r == nullptr || !g->busy) continue;
      const std::string where = "resource " + s.resource + " of group " + g->conf.name;
      if (s.start) {
        r->state = s.ok ? group_state::online : group_state::failed;
        r->error = s.ok ? "" : s.message;
        if (s.ok) {
          emit(group_events::resource_started, sev::info,
               where + " started in " + std::to_string(s.elapsed_ms) + " ms" +
                   (s.message.empty() ? "" : " (" + s.message + ")"));
        } else {
          emit(
              group_events::resource_failed, sev::error,
              where + " failed to start (attempt " + std::to_string(s.attempt) + "): " + s.message);
        }
      } else {
        r->state = s.ok ? group_state::offline : group_state::failed;
        r->error = s.ok ? "" : s.message;
        if (s.ok) {
          emit(group_events::resource_stopped, sev::info,
               where + " stopped in " + std::to_string(s.elapsed_ms) + " ms");
        } else {
          emit(group_events::resource_stop_failed, sev::error,
               where + " failed to stop (attempt " + std::to_string(s.attempt) + "): " + s.message);
        }
      }
      return;
    }
  }

  // ---- actions (io side) ----
  template <typename Work, typename Done>
  void dispatch(group_rt& g, Work work, Done done) {
    g.busy = true;
    g.action_started = clock::now();
    group_rt* gp = &g;
    asio::post(*g.strand, [this, gp, work = std::move(work), done = std::move(done),
                           token = std::weak_ptr<bool>(alive)]() mutable {
      job_result r = work(*gp);
      asio::post(io, [this, gp, r = std::move(r), done = std::move(done), token]() mutable {
        auto a = token.lock();
        if (!a || !*a) return;
        gp->busy = false;
        done(r);
        after_action();
      });
    });
  }

  // Activation of the whole group (from = nullopt) or a restart from one resource on.
  void start_group(group_rt& g, const std::string& event, std::optional<size_t> from) {
    g.action_event = event;
    const size_t first = from.value_or(0);
    if (!from) {
      std::string why = event;
      if (event == "failover" && g.owner_lost) why = "failover: the node that ran it is gone";
      if (event == "failover" && !g.owner_lost) why = "failover after a failure on another node";
      emit(group_events::starting, sev::info,
           "group " + g.conf.name + " starting on " + node + " (" + why + ")");
    }
    set_state(g, group_state::starting);
    g.owner_lost = false;
    g.owner_failed = false;
    dispatch(
        g, [first, event, this](group_rt& x) { return run_start(x, first, event); },
        [this, &g, event](const job_result& r) { start_done(g, event, r); });
  }

  void start_done(group_rt& g, const std::string& event, const job_result& r) {
    if (r.ok) {
      set_state(g, group_state::online);
      g.error.clear();
      emit(group_events::online, sev::info,
           "group " + g.conf.name + " online on " + node + " (" + event + ", " +
               std::to_string(g.resources.size()) + " resources, " +
               std::to_string(ms_between(g.action_started, clock::now())) + " ms)");
      return;
    }
    g.error = "resource " + r.failed_resource + ": " + r.message;
    const resource_rt* rr = g.find(r.failed_resource);
    const config::activation_policy pol =
        rr != nullptr ? rr->conf.activation : config::activation_policy{};
    set_state(g, group_state::failed);
    const auto next = other_eligible(g);
    if (g.failovers < pol.failovers && next) {
      ++g.failovers;
      publish();
      emit(group_events::start_failed, sev::error,
           "group " + g.conf.name + " failed to start on " + node + " (" + g.error +
               "): failing over to " + name_of(*next) + " (failover " +
               std::to_string(g.failovers) + " of " + std::to_string(pol.failovers) + ")");
      return;
    }
    emit(group_events::start_failed, sev::error,
         "group " + g.conf.name + " failed to start on " + node + " (" + g.error + "); " +
             (next ? "failovers used up" : "no other node can take it") + ": final action " +
             std::string(to_word(pol.action)));
    final_action(g.conf.name, pol.action, "activation of group " + g.conf.name + " failed");
  }

  void stop_group(group_rt& g, const std::string& event, const std::string& why,
                  std::function<void(bool)> then) {
    g.action_event = event;
    emit(group_events::stopping, sev::info,
         "group " + g.conf.name + " stopping on " + node + " (" + event +
             (why.empty() ? "" : ": " + why) + ")");
    set_state(g, group_state::stopping);
    dispatch(
        g, [event, this](group_rt& x) { return run_stop(x, 0, event); },
        [this, &g, event, then = std::move(then)](const job_result& r) {
          stop_done(g, event, r);
          if (then) then(r.ok);
        });
  }

  void stop_done(group_rt& g, const std::string& event, const job_result& r) {
    if (r.ok) {
      set_state(g, group_state::offline);
      emit(group_events::offline, sev::info,
           "group " + g.conf.name + " offline on " + node + " (" + event + ", " +
               std::to_string(ms_between(g.action_started, clock::now())) + " ms)");
      return;
    }
    g.error = "resource " + r.failed_resource + " could not be stopped: " + r.message;
    set_state(g, group_state::failed);
    const resource_rt* rr = g.find(r.failed_resource);
    const config::final_action a =
        rr != nullptr ? rr->conf.deactivation.action : config::final_action::stop_cluster;
    emit(group_events::stop_failed, sev::error,
         "group " + g.conf.name + " failed to stop on " + node + " (" + g.error +
             "): final action " + std::string(to_word(a)));
    final_action(g.conf.name, a, "deactivation of group " + g.conf.name + " failed");
  }

  void final_action(const std::string& group, config::final_action a, const std::string& why) {
    emit(group_events::final_action, sev::error,
         why + ": final action " + std::string(to_word(a)) + " on " + node);
    switch (a) {
      case config::final_action::none:
        break;
      case config::final_action::stop_group:
        if (group_rt* g = find_group(group)) {
          record_intent(*g, group_intent::stop, 0);
          decide_for(*g, clock::now());
        }
        break;
      case config::final_action::stop_cluster:
        if (hooks.stop_cluster) {
          asio::post(io, [this, token = std::weak_ptr<bool>(alive), why] {
            auto t = token.lock();
            if (t && *t) hooks.stop_cluster(why);
          });
        }
        break;
      case config::final_action::fence:
        if (hooks.fence) hooks.fence(why);
        break;
    }
  }

  void record_intent(group_rt& g, group_intent kind, uint8_t target) {
    uint32_t seq = g.intent.seq;
    for (size_t i = 0; i < view.size(); ++i) {
      if (const cluster::group_report* r = report_of(i, g.id)) seq = std::max(seq, r->intent_seq);
    }
    adopt_intent(g, {seq + 1, kind, kind == group_intent::move ? target : uint8_t{0}}, true);
  }

  void after_action() {
    publish();
    const time_point now = clock::now();
    for (auto& g : groups) {
      if (!starts_allowed && !g->busy &&
          (g->state == group_state::online || g->state == group_state::starting)) {
        // stop_all() came while this group was busy starting.
        stop_group(*g, "stop", "this node is stopping its groups", {});
        continue;
      }
      decide_for(*g, now);
    }
    if (!idle_waiters.empty() && !any_busy_or_active()) {
      auto waiters = std::move(idle_waiters);
      idle_waiters.clear();
      for (auto& w : waiters)
        w();
    }
  }

  bool any_busy_or_active() const {
    return std::any_of(groups.begin(), groups.end(),
                       [](const auto& g) { return g->busy || runs(g->state); });
  }

  // ---- monitors ----
  void schedule(monitor_rt& m, milliseconds after) {
    m.timer->expires_after(after);
    m.timer->async_wait([this, &m, token = std::weak_ptr<bool>(alive)](const std::error_code& ec) {
      auto a = token.lock();
      if (ec || !a || !*a) return;
      tick(m);
    });
  }

  group_rt* group_of(const monitor_rt& m) {
    return m.conf.group.empty() ? nullptr : find_group(m.conf.group);
  }

  bool applicable(monitor_rt& m) {
    if (!m.mon || !m.unavailable.empty()) return false;
    group_rt* g = group_of(m);
    if (g != nullptr && g->busy) return false;
    if (m.conf.when == config::monitor_when::active)
      return g != nullptr && g->state == group_state::online;
    return true;
  }

  void tick(monitor_rt& m) {
    schedule(m, m.conf.interval);
    if (m.in_flight || !applicable(m)) return;
    m.in_flight = true;
    monitor* mon = m.mon.get();
    const milliseconds timeout = m.conf.timeout;
    asio::post(*m.strand, [this, &m, mon, timeout, token = std::weak_ptr<bool>(alive)] {
      check_result r;
      const time_point began = clock::now();
      try {
        r = mon->check(timeout);
      } catch (const std::exception& e) {
        r = {false, e.what()};
      }
      const std::chrono::nanoseconds took = clock::now() - began;
      asio::post(io, [this, &m, r, took, token] {
        auto a = token.lock();
        if (!a || !*a) return;
        m.in_flight = false;
        if (m.retired) {
          m.mon.reset();  // its last check is in: let go of its threads and sockets
          return;
        }
        on_check(m, r);
        if (hooks.check_timed) hooks.check_timed(m.conf.name, took);
        if (m.wake_pending) {
          m.wake_pending = false;
          tick(m);
        }
      });
    });
  }

  void on_check(monitor_rt& m, const check_result& r) {
    m.last_check = clock::now();
    ++m.checks;
    m.last_message = r.message;
    // A result that arrives after its group began an action says nothing about the new state.
    if (!applicable(m)) return;
    if (r.inconclusive) {
      // Neither healthy nor failed: the failure count stays where it was.
      if (!m.unverified)
        emit(group_events::monitor_unverified, sev::warning,
             "monitor " + m.conf.name +
                 " could not check (no recovery while it cannot): " + r.message);
      m.unverified = true;
      return;
    }
    m.unverified = false;
    if (r.ok) {
      m.failures = 0;
      m.exhausted = false;
      if (m.failing) {
        m.failing = false;
        emit(group_events::monitor_recovered, sev::info,
             "monitor " + m.conf.name + " is healthy again");
      }
      if (++m.healthy >= healthy_checks_to_reset) m.restarts = 0;
      return;
    }
    m.healthy = 0;
    if (m.exhausted) return;  // reported, recovery used up; the status still shows it failing
    ++m.failures;
    m.failing = true;
    emit(group_events::monitor_failed, sev::warning,
         "monitor " + m.conf.name + " failed (" + std::to_string(m.failures) + " in a row, " +
             std::to_string(m.conf.retries) + " tolerated): " + r.message);
    if (m.failures <= m.conf.retries) return;
    m.failures = 0;
    recover(m, r.message);
  }

  void recover(monitor_rt& m, const std::string& why) {
    const config::recovery_policy& pol = m.conf.recovery;
    group_rt* g = group_of(m);
    const std::string cause = "monitor " + m.conf.name + " (" + why + ")";
    if (g == nullptr) {
      m.exhausted = true;
      final_action("", pol.action, cause);
      return;
    }
    if (g->state != group_state::online || g->busy) {
      // The group is not active here: the failure is reported, recovery belongs to the node
      // that runs it.
      return;
    }
    if (m.restarts < pol.restarts) {
      ++m.restarts;
      std::optional<size_t> from;
      std::string target = "group " + g->conf.name;
      if (!pol.resource.empty()) {
        for (size_t i = 0; i < g->resources.size(); ++i)
          if (g->resources[i].conf.name == pol.resource) from = i;
        target = "resource " + pol.resource + " of group " + g->conf.name;
      }
      emit(group_events::recovery_restart, sev::warning,
           cause + ": restarting " + target + " (restart " + std::to_string(m.restarts) + " of " +
               std::to_string(pol.restarts) + ")");
      restart(*g, from.value_or(0));
      return;
    }
    const auto next = other_eligible(*g);
    if (g->failovers < pol.failovers && next) {
      emit(group_events::recovery_failover, sev::error,
           cause + ": restarts used up, failing group " + g->conf.name + " over to " +
               name_of(*next) + " (failover " + std::to_string(g->failovers + 1) + " of " +
               std::to_string(pol.failovers) + ")");
      g->error = cause;
      stop_group(*g, "failover", cause, [this, g](bool ok) {
        if (!ok) return;  // stop_done ran the deactivation's final action
        ++g->failovers;
        set_state(*g, group_state::failed);
      });
      return;
    }
    m.exhausted = true;
    final_action(g->conf.name, pol.action,
                 cause + ": restarts" + (g->failovers < pol.failovers ? "" : " and failovers") +
                     " used up" + (next ? "" : ", no other node can take the group"));
  }

  // Stops resources [from, end) in reverse and starts them again (the target and everything
  // started after it).
  void restart(group_rt& g, size_t from) {
    g.action_event = "restart";
    set_state(g, group_state::starting);
    dispatch(
        g,
        [this, from](group_rt& x) {
          job_result r = run_stop(x, from, "restart");
          if (!r.ok) {
            r.message = "could not be stopped for the restart: " + r.message;
            return r;
          }
          return run_start(x, from, "restart");
        },
        [this, &g](const job_result& r) {
          ++g.restarts;
          start_done(g, "restart", r);
        });
  }
};

group_manager::group_manager(asio::io_context& io, const config::cluster_config& cfg,
                             std::string node, uint8_t self, manager_hooks hooks,
                             manager_options opts)
    : d_(std::make_unique<impl>(io, cfg, std::move(node), self, std::move(hooks),
                                std::move(opts))) {
  d_->build();
  d_->last_reports = d_->reports();
}

group_manager::~group_manager() = default;

void group_manager::update(const std::vector<peer_input>& view, time_point now) {
  d_->update(view, now);
}

std::vector<cluster::group_report> group_manager::reports() const {
  return d_->reports();
}

json group_manager::command(std::string_view cmd, std::string_view group, std::string_view node) {
  impl& d = *d_;
  std::vector<impl::group_rt*> targets;
  if (group.empty()) {
    if (cmd == "move") return {{"ok", false}, {"error", "group move needs a group name"}};
    for (auto& g : d.groups)
      targets.push_back(g.get());
  } else {
    impl::group_rt* g = d.find_group(group);
    if (g == nullptr) {
      std::string names;
      for (auto& x : d.groups)
        names += (names.empty() ? "" : ", ") + x->conf.name;
      return {
          {"ok", false},
          {"error", "no group named '" + std::string(group) + "'" +
                        (names.empty() ? " (none is configured)" : " (groups: " + names + ")")}};
    }
    targets.push_back(g);
  }
  group_intent kind = group_intent::run;
  uint8_t target = 0;
  if (cmd == "stop") {
    kind = group_intent::stop;
  } else if (cmd == "move") {
    kind = group_intent::move;
    impl::group_rt& g = *targets.front();
    placement_input in = d.input_of(g);
    if (node.empty()) {
      // The next eligible node after the one that runs it.
      std::optional<uint8_t> current;
      for (const node_input& n : in.nodes)
        if (n.up && runs(n.state)) current = n.id;
      for (uint8_t id : in.preference) {
        if (id != current && eligible(in, id)) {
          node = d.cfg.nodes[id].name;
          break;
        }
      }
      if (node.empty()) {
        return {{"ok", false},
                {"error", "group " + g.conf.name + ": no other node can take it now (eligible: " +
                              "up, online, holding quorum, in the group's nodes, not failed)"}};
      }
    }
    const auto id = d.id_of(node);
    if (!id) return {{"ok", false}, {"error", "no node named '" + std::string(node) + "'"}};
    if (std::find(g.conf.nodes.begin(), g.conf.nodes.end(), node) == g.conf.nodes.end()) {
      return {{"ok", false},
              {"error", "group " + g.conf.name + " may not run on " + std::string(node) +
                            " (its nodes are listed in the configuration)"}};
    }
    // The target's failure mark is what a move clears, so only its liveness counts here.
    in.nodes[*id].state = group_state::offline;
    if (!eligible(in, *id)) {
      return {{"ok", false},
              {"error", "group " + g.conf.name + " cannot move to " + std::string(node) +
                            ": that node is not up, online and holding quorum"}};
    }
    target = *id;
  } else if (cmd != "start") {
    return {{"ok", false}, {"error", "unknown group command '" + std::string(cmd) + "'"}};
  }
  json out = json::array();
  for (impl::group_rt* g : targets) {
    d.record_intent(*g, kind, target);
    d.emit(group_events::command, cluster::severity::info,
           "group " + g->conf.name + ": command '" +
               describe(g->intent, kind == group_intent::move ? d.name_of(target) : "") +
               "' given on " + d.node + " (seq " + std::to_string(g->intent.seq) + ")");
    out.push_back(
        {{"group", g->conf.name}, {"intent", cluster::to_string(kind)}, {"seq", g->intent.seq}});
    d.decide_for(*g, clock::now());
  }
  d.publish();
  json ans = {{"ok", true}, {"groups", out}};
  if (kind == group_intent::move) ans["target"] = d.name_of(target);
  return ans;
}

json group_manager::status(time_point now) const {
  const impl& d = *d_;
  json out = json::array();
  for (const auto& gp : d.groups) {
    const impl::group_rt& g = *gp;
    json nodes = json::object();
    std::optional<uint8_t> runner;
    for (size_t i = 0; i < d.cfg.nodes.size(); ++i) {
      group_state s = group_state::offline;
      bool up = i == d.self || (i < d.view.size() && d.view[i].up);
      if (i == d.self) {
        s = g.state;
      } else if (const cluster::group_report* r = d.report_of(i, g.id); r != nullptr && up) {
        s = r->state;
      }
      if (runs(s) && !runner) runner = static_cast<uint8_t>(i);
      nodes[d.cfg.nodes[i].name] = up ? std::string(cluster::to_string(s)) : "down";
    }
    json res = json::array();
    for (const impl::resource_rt& r : g.resources) {
      json rj = {{"name", r.conf.name},
                 {"type", config::to_string(r.conf.type)},
                 {"state", cluster::to_string(r.state)}};
      if (!r.error.empty()) rj["error"] = r.error;
      if (r.res) rj["details"] = r.res->describe();
      res.push_back(rj);
    }
    json mons = json::array();
    for (const auto& m : d.monitors) {
      if (m->conf.group != g.conf.name) continue;
      json mj = {{"name", m->conf.name},
                 {"type", config::to_string(m->conf.type)},
                 {"healthy", !m->failing},
                 {"checks", m->checks},
                 {"restarts", m->restarts}};
      if (!m->unavailable.empty()) mj["unavailable"] = m->unavailable;
      if (m->unverified) mj["unverified"] = true;
      if (!m->last_message.empty()) mj["message"] = m->last_message;
      if (m->last_check) mj["last_check_ms"] = ms_between(*m->last_check, now);
      mons.push_back(mj);
    }
    json gj = {{"name", g.conf.name},
               {"state", cluster::to_string(g.state)},
               {"busy", g.busy},
               {"since_ms", ms_between(g.since, now)},
               {"intent", cluster::to_string(g.intent.kind)},
               {"intent_seq", g.intent.seq},
               {"failovers", g.failovers},
               {"reason", g.reason},
               {"nodes", nodes},
               {"resources", res},
               {"monitors", mons},
               {"autostart", g.conf.autostart},
               {"failback", config::to_string(g.conf.failback)}};
    if (g.intent.kind == group_intent::move) gj["intent_target"] = d.name_of(g.intent.target);
    if (runner) gj["running_on"] = d.name_of(*runner);
    if (g.target) gj["target"] = d.name_of(*g.target);
    if (!g.error.empty()) gj["error"] = g.error;
    if (!g.unavailable.empty()) gj["unavailable"] = g.unavailable;
    out.push_back(gj);
  }
  json mons = json::array();
  for (const auto& m : d.monitors) {
    if (!m->conf.group.empty()) continue;
    json mj = {{"name", m->conf.name},
               {"type", config::to_string(m->conf.type)},
               {"healthy", !m->failing},
               {"checks", m->checks}};
    if (m->unverified) mj["unverified"] = true;
    if (!m->last_message.empty()) mj["message"] = m->last_message;
    mons.push_back(mj);
  }
  return {{"groups", out}, {"monitors", mons}};
}

void group_manager::stop_all(const std::string& why, std::function<void()> done) {
  impl& d = *d_;
  d.starts_allowed = false;
  for (auto& g : d.groups) {
    if (!g->busy && (g->state == group_state::online || g->state == group_state::starting))
      d.stop_group(*g, "stop", why, {});
  }
  if (!d.any_busy_or_active()) {
    done();  // nothing runs here: at once
    return;
  }
  d.idle_waiters.push_back(std::move(done));
}

void group_manager::allow_starts(bool allowed) {
  d_->starts_allowed = allowed;
}

bool group_manager::any_active() const {
  return d_->any_busy_or_active();
}

std::vector<std::string> group_manager::blocked_by_running(
    const std::vector<std::string>& groups_to_restart) const {
  std::vector<std::string> out;
  for (const std::string& name : groups_to_restart) {
    for (const auto& g : d_->groups)
      if (g->conf.name == name && (g->busy || runs(g->state))) out.push_back(name);
  }
  return out;
}

void group_manager::reconfigure(const config::cluster_config& cfg) {
  impl& d = *d_;
  d.cfg = cfg;
  std::set<std::string> present;
  for (const config::group_config& gc : cfg.groups) {
    present.insert(gc.name);
    impl::group_rt* g = d.find_group(gc.name);
    if (g == nullptr) {
      auto ng = std::make_unique<impl::group_rt>();
      ng->conf = gc;
      ng->strand = std::make_unique<impl::strand_t>(asio::make_strand(d.actions.get_executor()));
      ng->since = clock::now();
      d.build_group(*ng);
      d.groups.push_back(std::move(ng));
      continue;
    }
    g->conf.nodes = gc.nodes;
    g->conf.failback = gc.failback;
    g->conf.autostart = gc.autostart;
    if (!g->busy && !runs(g->state)) {
      // Stopped here: resources follow the new file (the reload refused changes to a group
      // that runs here).
      const bool was_unavailable = !g->unavailable.empty();
      g->conf = gc;
      d.build_group(*g);
      if (was_unavailable && g->unavailable.empty()) {
        g->state = group_state::offline;
        g->error.clear();
      }
    }
  }
  // Removed groups are dropped; one that still runs here is kept (tandemd refuses a reload that
  // removes a group running here, so this is only a guard).
  std::erase_if(d.groups, [&](const auto& g) {
    return !present.contains(g->conf.name) && !g->busy && !runs(g->state);
  });
  // Monitors are rebuilt from scratch. The old ones are retired, not destroyed: a check in
  // flight still reports to its object, which ignores it. The monitor itself (a nic_link
  // monitor's event thread) goes now, or when its check in flight is in.
  for (auto& m : d.monitors) {
    m->retired = true;
    m->timer->cancel();
    if (!m->in_flight) m->mon.reset();
    d.retired_monitors.push_back(std::move(m));
  }
  d.monitors.clear();
  for (const config::monitor_config& mc : cfg.monitors) {
    auto m = std::make_unique<impl::monitor_rt>();
    m->conf = mc;
    m->timer = std::make_unique<asio::steady_timer>(d.io);
    m->strand = std::make_unique<impl::strand_t>(asio::make_strand(d.checks.get_executor()));
    d.build_monitor(*m);
    d.monitors.push_back(std::move(m));
  }
  for (auto& m : d.monitors)
    d.schedule(*m, std::chrono::milliseconds(0));
  d.publish();
}

std::optional<std::string> group_manager::wants_lease_handoff() const {
  const impl& d = *d_;
  if (!d.opts.lease_quorum || d.self >= d.view.size() || !d.view[d.self].quorum) return {};
  if (d.any_busy_or_active()) return {};
  for (const auto& g : d.groups) {
    placement_input in = d.input_of(*g);
    if (!wanted(in)) continue;
    const auto t = target_of(in);
    if (t && *t != d.self && *t < d.view.size() && !d.view[*t].quorum) return d.name_of(*t);
  }
  return {};
}

void group_manager::set_takeover_delay(std::chrono::nanoseconds delay) {
  d_->opts.takeover_delay = delay;
}

}  // namespace tandem::ctl::groups
