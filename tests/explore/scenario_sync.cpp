// tests/explore/scenario_sync.cpp — the sync scenario: Mutex, Event, Semaphore,
// Condition, FutexCounter and Channel used by fibers on two workers (primitives
// bound to the runtime) and by plain threads (primitives bound to Threaded), the
// Channel across both. Fibers block only on fiber-bound primitives and threads
// on Threaded ones, so every call is valid whichever side may signal.
// Invariants:
//  - mutual exclusion: a counter entered inside the critical section is 1, and the
//    guarded count equals the entries; a Semaphore never has more holders than
//    permits, and ends with all of them;
//  - no lost wake-up: every waiter returns (ping-pong on auto-reset Events, a
//    manual gate set then reset with all its waiters queued, a Condition queue,
//    FutexCounter waiters); a lost one hangs the run (the watchdog's dump);
//  - wait_until_changed returns only once value() != the snapshot;
//  - every Channel value arrives exactly once, each producer's in order;
//  - a fiber cancelled in a wait ends with FiberCancelled and takes nothing
//    (sync_cancel.cpp);
//  - error handlers that park (a yield, a sleep, a Mutex lock) rethrow the
//    fiber's own exception.
#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "sync.hpp"

namespace weft::explore::sync {

// ------------------------------------------------------------------ runner ----

struct Item {
  int producer = 0;
  int seq = 0;
};

/// The whole load on `rt` (2 workers) and plain threads (a Load; see explore.hpp).
class SyncLoad {
 public:
  SyncLoad(weft::Runtime& rt, const Run& run, bool interrupted)
      : rt_(rt),
        run_(run),
        interrupted_(interrupted),
        fd_(rt, "fibers"),
        td_(weft::threaded, "threads"),
        ch_(run.rng(7).next() % 5) {}

  void start();
  void finish();

 private:
  template <class F>
  void fiber(const char* name, F&& f) {
    fibers_.push_back(
        rt_.spawn_on(static_cast<unsigned>(r_.next() % rt_.workers()), std::forward<F>(f), {.name = name}));
  }
  template <class F>
  void thread(F&& f) {
    threads_.emplace_back(std::forward<F>(f));
  }
  void domain_roles(Side& d, bool fibers);
  void channel_roles();

  weft::Runtime& rt_;
  const Run& run_;
  bool interrupted_;
  Rng r_ = run_.rng(3);
  Side fd_, td_;
  Gate gates_[2];
  long iters_ = 0, rounds_ = 0;
  int items_ = 0;
  std::uint32_t bumps_ = 0;
  // The Channel: producers 0-1 fibers, 2 a thread; consumers 2 fibers, 1 thread.
  weft::Channel<Item> ch_;
  static constexpr int kProducers = 3;
  int per_producer_ = 0;
  std::atomic<int> sent_[kProducers]{};  // values each producer got into the channel
  std::vector<std::atomic<int>> got_;    // per (producer, seq): times received
  std::vector<weft::JoinHandle<void>> fibers_, producers_, consumers_;
  std::vector<std::thread> threads_, thread_producers_, thread_consumers_;
};

void SyncLoad::domain_roles(Side& d, bool fibers) {
  auto spawn = [&](const char* name, auto f) {
    if (fibers)
      fiber(name, std::move(f));
    else
      thread(std::move(f));
  };
  for (int i = 0; i < 2; ++i) spawn("mixer", [&d, r = r_.next(), n = iters_] { mixer(d, Rng(r), n); });
  spawn("ping", [&d, r = r_.next(), n = rounds_] { pinger(d, Rng(r), n, true); });
  spawn("pong", [&d, r = r_.next(), n = rounds_] { pinger(d, Rng(r), n, false); });
  Gate* g = &gates_[fibers ? 0 : 1];
  const long gates = std::max(1L, rounds_ / 8);
  for (int i = 0; i < 2; ++i) spawn("gate waiter", [&d, r = r_.next(), gates, g] { gate_waiter(d, Rng(r), gates, g); });
  spawn("gate keeper", [&d, r = r_.next(), gates, g] { gate_keeper(d, Rng(r), gates, g); });
  d.seen.assign(static_cast<std::size_t>(items_), 0);
  spawn("cond producer", [&d, r = r_.next(), n = items_] { cond_producer(d, Rng(r), 0, n / 2); });
  spawn("cond producer", [&d, r = r_.next(), n = items_] { cond_producer(d, Rng(r), n / 2, n - n / 2); });
  spawn("cond consumer", [&d, r = r_.next(), n = items_] { cond_consumer(d, Rng(r), n); });
  if (fibers) spawn("cond consumer", [&d, r = r_.next(), n = items_] { cond_consumer(d, Rng(r), n); });
  for (int i = 0; i < 3; ++i) spawn("futex waiter", [&d, r = r_.next(), t = bumps_] { futex_waiter(d, Rng(r), t); });
  spawn("futex bumper", [&d, r = r_.next(), t = bumps_] { futex_bumper(d, Rng(r), t); });
}

void SyncLoad::channel_roles() {
  per_producer_ = static_cast<int>(iters_);
  got_ = std::vector<std::atomic<int>>(static_cast<std::size_t>(kProducers * per_producer_));
  auto produce = [this](int p, std::uint64_t seed) {
    Rng r(seed);
    for (int s = 0; s < per_producer_; ++s) {
      bool ok = false;
      while (!ok) {
        switch (r.next() % 3) {
          case 0:
            ch_.send(Item{p, s});
            ok = true;
            break;
          case 1: {
            Item v{p, s};
            ok = ch_.try_send(v) == weft::SendStatus::ok;
            if (!ok) pause(r);
            break;
          }
          default:
            ok = ch_.send_for(Item{p, s}, std::chrono::microseconds(r.between(0, 500))) == weft::SendStatus::ok;
        }
      }
      sent_[p].fetch_add(1);
    }
  };
  auto consume = [this](std::uint64_t seed) {
    Rng r(seed);
    int last[kProducers] = {-1, -1, -1};
    for (;;) {
      std::optional<Item> v;
      const unsigned how = static_cast<unsigned>(r.next() % 3);
      if (how == 0) {
        v = ch_.recv();
        if (!v) return;  // closed and drained
      } else {
        auto res = how == 1 ? ch_.try_recv() : ch_.recv_for(std::chrono::microseconds(r.between(0, 500)));
        if (res.status == weft::RecvStatus::closed) return;
        if (!res) {
          if (how == 1) pause(r);
          continue;
        }
        v = res.value;
      }
      EXPECT(v->seq > last[v->producer], "producer " + std::to_string(v->producer) + "'s value " +
                                             std::to_string(v->seq) + " arrived after " +
                                             std::to_string(last[v->producer]) + " at one consumer");
      last[v->producer] = v->seq;
      got_[static_cast<std::size_t>(v->producer * per_producer_ + v->seq)].fetch_add(1);
    }
  };
  for (int p = 0; p < 2; ++p)
    producers_.push_back(rt_.spawn_on(static_cast<unsigned>(p) % rt_.workers(), [=, s = r_.next()] { produce(p, s); },
                                      {.name = "channel producer"}));
  thread_producers_.emplace_back([=, s = r_.next()] { produce(2, s); });
  for (int c = 0; c < 2; ++c)
    consumers_.push_back(rt_.spawn_on(static_cast<unsigned>(c) % rt_.workers(), [=, s = r_.next()] { consume(s); },
                                      {.name = "channel consumer"}));
  thread_consumers_.emplace_back([=, s = r_.next()] { consume(s); });
}

void SyncLoad::start() {
  iters_ = weft::test::scaled(static_cast<long>(r_.between(100, 300)));
  rounds_ = weft::test::scaled(static_cast<long>(r_.between(50, 200)));
  items_ = static_cast<int>(weft::test::scaled(static_cast<long>(r_.between(40, 200))));
  bumps_ = static_cast<std::uint32_t>(weft::test::scaled(static_cast<long>(r_.between(100, 400))));
  domain_roles(fd_, true);
  domain_roles(td_, false);
  channel_roles();
  const long cancels = weft::test::scaled(static_cast<long>(r_.between(10, 40)));
  fibers_.push_back(rt_.spawn_on(0, [this, cancels, seed = r_.next()] { cancel_rounds(rt_, Rng(seed), cancels); },
                                 {.name = "canceller"}));
  if (!interrupted_) {
    std::this_thread::sleep_for(std::chrono::microseconds(r_.between(0, 3000)));
    consumers_[0].cancel();  // a channel consumer cancelled at a random point
  }
}

void SyncLoad::finish() {
  auto join = [&](weft::JoinHandle<void>& h, bool may_cancel) {
    join_load_fiber(h, run_, interrupted_, "a fiber of the sync load", may_cancel);
  };
  phase("sync: joining");
  for (auto& h : fibers_) join(h, false);
  for (auto& h : producers_) join(h, false);
  for (auto& t : thread_producers_) t.join();
  ch_.close();
  for (std::size_t i = 0; i < consumers_.size(); ++i) join(consumers_[i], i == 0);
  for (auto& t : thread_consumers_) t.join();
  for (auto& t : threads_) t.join();
  if (interrupted_) return;
  phase("sync: checking");
  for (Side* d : {&fd_, &td_}) {
    const char* side = d->name;
    EXPECT(d->counter == d->entries.load(), std::string(side) + ": " + std::to_string(d->counter) +
                                                " guarded increments for " + std::to_string(d->entries.load()) +
                                                " critical sections");
    EXPECT(d->sem.available() == kPermits,
           std::string(side) + ": the Semaphore ends with " + std::to_string(d->sem.available()) + " permits");
    EXPECT(d->taken == items_, std::string(side) + ": the Condition queue handed out " + std::to_string(d->taken));
    for (std::size_t i = 0; i < d->seen.size(); ++i)
      EXPECT(d->seen[i] == 1, std::string(side) + ": queue item " + std::to_string(i) + " taken " +
                                  std::to_string(d->seen[i]) + " times");
    EXPECT(d->ctr.value() == bumps_,
           std::string(side) + ": the FutexCounter ends at " + std::to_string(d->ctr.value()));
  }
  note("iterations " + std::to_string(iters_) + ", rounds " + std::to_string(rounds_) + ", queue items " +
       std::to_string(items_) + ", critical sections " + std::to_string(fd_.entries.load()) + " + " +
       std::to_string(td_.entries.load()) + ", channel values " + std::to_string(got_.size()) + " (capacity " +
       std::to_string(ch_.capacity()) + ")");
  for (int p = 0; p < kProducers; ++p) EXPECT(sent_[p].load() == per_producer_, "a producer did not send everything");
  for (std::size_t i = 0; i < got_.size(); ++i)
    EXPECT(got_[i].load() == 1,
           "channel value " + std::to_string(i) + " received " + std::to_string(got_[i].load()) + " times");
}

namespace {
void body(Run& run) {
  weft::Runtime rt(run.config(2));
  watch(&rt);
  phase("sync: running");
  {
    SyncLoad load(rt, run, false);
    load.start();
    load.finish();
  }
  EXPECT(rt.stats().unjoined_exceptions == 0, "an exception nobody joined");
  note_stats(rt);
  watch(nullptr);
}
}  // namespace
}  // namespace weft::explore::sync

namespace weft::explore {
std::unique_ptr<Load> make_sync_load(weft::Runtime& rt, const Run& run, bool interrupted) {
  struct L final : Load {
    sync::SyncLoad s;
    L(weft::Runtime& rt, const Run& run, bool i) : s(rt, run, i) {}
    void start() override { s.start(); }
    void finish() override { s.finish(); }
  };
  return std::make_unique<L>(rt, run, interrupted);
}

const Scenario kSync{"sync", "Mutex/Event/Semaphore/Condition/FutexCounter/Channel on 2 workers and threads",
                     &sync::body};
}  // namespace weft::explore
