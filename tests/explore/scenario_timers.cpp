// tests/explore/scenario_timers.cpp — the timers scenario: groups of weft::Timer
// armed, reset, cancelled and waited on by fibers, and re-armed, reset or
// cancelled by the callbacks of their group's other timers; then every group
// moves (idle) to the other worker and goes on there.
// Invariants (runtime/timer.hpp's accounting):
//  - every arm ends in one expiry or is superseded by a reset()/cancel() that
//    returned true: arms == expirations + supersedes, per timer, once all are idle;
//  - the callback ran once per expiry;
//  - wait() returns true only after an expiry, false only after a cancel (or at
//    once on an idle timer), and every wait returns (a lost expiry hangs the run);
//  - an idle timer armed by a fiber of another worker moves there.
// A group's timers, counters and generator are touched by one worker at a time
// (its fibers and its scheduler context, where callbacks run); the hand-over
// between workers rides on the joins.
#include <deque>
#include <memory>
#include <vector>

#include "explore.hpp"

namespace weft::explore::timers {
namespace {

using namespace std::chrono_literals;

struct Group;

struct Cell {
  Group* group = nullptr;
  std::size_t index = 0;
  std::unique_ptr<weft::Timer> t;
  long arms = 0, supersedes = 0, cancels = 0, callbacks = 0;
  long rearms_left = 0;  // the callback re-arms its own timer this many more times
};

struct Group {
  std::deque<Cell> cells;
  Rng r{1};
};

void arm(Cell& c, Rng& r) {
  const auto d = std::chrono::microseconds(r.between(0, 2000));
  const bool superseded = r.next() % 2 ? c.t->reset(d) : c.t->reset_at(std::chrono::steady_clock::now() + d);
  ++c.arms;
  if (superseded) ++c.supersedes;
}

void cancel(Cell& c) {
  if (!c.t->cancel()) return;
  ++c.supersedes;
  ++c.cancels;
}

// Scheduler context of the group's worker.
void on_expire(Cell& c) {
  ++c.callbacks;
  Group& g = *c.group;
  if (c.rearms_left > 0) {
    --c.rearms_left;
    arm(c, g.r);
  }
  switch (g.r.next() % 6) {
    case 0:
      arm(g.cells[g.r.next() % g.cells.size()], g.r);
      break;
    case 1:
      cancel(g.cells[g.r.next() % g.cells.size()]);
      break;
    default:
      break;
  }
}

// One fiber's random ops on its group (all on one worker).
void operate(Group& g, Rng r, long iters) {
  for (long i = 0; i < iters; ++i) {
    Cell& c = g.cells[r.next() % g.cells.size()];
    switch (r.next() % 10) {
      case 0:
      case 1:
      case 2:
        arm(c, r);
        if (r.next() % 4 == 0) c.rearms_left += static_cast<long>(r.between(1, 3));
        break;
      case 3:
      case 4:
        cancel(c);
        break;
      case 5:
      case 6: {
        if (!c.t->armed()) {
          EXPECT(!c.t->wait(), "wait() on an idle timer returned true");
          break;
        }
        const std::uint64_t expired = c.t->expirations();
        const long cancels = c.cancels;
        if (c.t->wait())
          EXPECT(c.t->expirations() > expired, "wait() returned true without an expiry");
        else
          EXPECT(c.cancels > cancels, "wait() returned false without a cancel");
        break;
      }
      case 7:
        weft::sleep_for(std::chrono::microseconds(r.between(0, 1500)));
        break;
      case 8:
        weft::yield();
        break;
      default:
        if (r.next() % 2) handler_probe(r);
        break;
    }
  }
}

class TimerLoad final : public Load {
 public:
  TimerLoad(weft::Runtime& rt, const Run& run, bool interrupted) : rt_(rt), run_(run), interrupted_(interrupted) {}

  void start() override {
    Rng r = run_.rng(11);
    for (unsigned k = 0; k < 2; ++k) {
      Group& g = groups_[k];
      g.r = run_.rng(20 + k);
      const std::size_t n = r.between(2, 8);
      for (std::size_t i = 0; i < n; ++i) {
        Cell& c = g.cells.emplace_back();
        c.group = &g;
        c.index = i;
        c.t = std::make_unique<weft::Timer>([&c] { on_expire(c); });
      }
    }
    const long iters = weft::test::scaled(static_cast<long>(r.between(100, 400)));
    // The conductor: each phase runs the groups' fibers (group g on worker
    // (g + phase) % workers), joins them, and leaves every timer idle.
    conductor_ = rt_.spawn_on(
        0,
        [this, iters, seed = r.next()] {
          Rng cr(seed);
          for (unsigned phase = 0; phase < 2; ++phase) {
            std::vector<weft::JoinHandle<void>> hs;
            for (unsigned gi = 0; gi < 2; ++gi) {
              const unsigned w = (gi + phase) % rt_.workers();
              hs.push_back(rt_.spawn_on(
                  w,
                  [this, gi, w, iters, s = cr.next()] {
                    Group& g = groups_[gi];
                    Rng fr(s);
                    std::vector<weft::JoinHandle<void>> ops;
                    const std::size_t n = fr.between(1, 4);
                    for (std::size_t i = 0; i < n; ++i)
                      ops.push_back(rt_.spawn_on(w, [&g, iters, x = fr.next()] { operate(g, Rng(x), iters); },
                                                 {.name = "timer ops"}));
                    bool cancelled = false;
                    for (auto& h : ops) {
                      try {
                        h.join();
                      } catch (...) {
                        const Outcome o = classify(run_, std::current_exception(), "a timer fiber");
                        EXPECT(o == Outcome::fiber_cancelled || o == Outcome::shut_down,
                               std::string("a timer fiber ended with ") + name_of(o));
                        cancelled = true;
                      }
                    }
                    for (Cell& c : g.cells) cancel(c);  // idle: the group may move
                    if (cancelled) throw weft::FiberCancelled();
                  },
                  {.name = "timer phase"}));
            }
            for (auto& h : hs) h.join();
          }
        },
        {.name = "timer conductor"});
  }

  void finish() override {
    phase("timers: joining");
    join_load_fiber(conductor_, run_, interrupted_, "the timers' conductor");
    if (interrupted_) return;
    long arms = 0, expirations = 0, supersedes = 0;
    for (Group& g : groups_)
      for (Cell& c : g.cells) {
        arms += c.arms;
        expirations += static_cast<long>(c.t->expirations());
        supersedes += c.supersedes;
      }
    note("timers " + std::to_string(groups_[0].cells.size() + groups_[1].cells.size()) + ": arms " +
         std::to_string(arms) + ", expirations " + std::to_string(expirations) + ", supersedes " +
         std::to_string(supersedes));
    for (Group& g : groups_)
      for (Cell& c : g.cells) {
        const long exp = static_cast<long>(c.t->expirations());
        EXPECT(!c.t->armed(), "a timer is still armed after its group cancelled it");
        EXPECT(c.arms == exp + c.supersedes, "timer " + std::to_string(c.index) + ": " + std::to_string(c.arms) +
                                                 " arms, " + std::to_string(exp) + " expirations, " +
                                                 std::to_string(c.supersedes) + " supersedes");
        EXPECT(c.callbacks == exp, "timer " + std::to_string(c.index) + ": " + std::to_string(c.callbacks) +
                                       " callbacks for " + std::to_string(exp) + " expirations");
      }
  }

 private:
  weft::Runtime& rt_;
  const Run& run_;
  bool interrupted_;
  Group groups_[2];
  weft::JoinHandle<void> conductor_;
};

void body(Run& run) {
  const unsigned workers = 1 + static_cast<unsigned>(run.rng(0).next() % 2);
  weft::Runtime rt(run.config(workers));
  watch(&rt);
  phase("timers: running");
  {
    TimerLoad load(rt, run, false);
    load.start();
    load.finish();
  }
  EXPECT(rt.stats().unjoined_exceptions == 0, "an exception nobody joined");
  note_stats(rt);
  watch(nullptr);
}

}  // namespace
}  // namespace weft::explore::timers

namespace weft::explore {
std::unique_ptr<Load> make_timers_load(weft::Runtime& rt, const Run& run, bool interrupted) {
  return std::make_unique<timers::TimerLoad>(rt, run, interrupted);
}

const Scenario kTimers{"timers", "Timers armed/reset/cancelled/waited by fibers and callbacks, moved between workers",
                       &timers::body};
}  // namespace weft::explore
