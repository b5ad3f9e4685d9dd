// Incident 004: an actor that crashed and was restarted vanished from the
// scheduler. Every send also wrote a notification byte that nobody drained, so
// the restarted actor cycled wake -> empty mailbox -> re-register so fast that
// a race between the poller clearing and re-registering its entry left it on no
// queue; the caller of stop() then waited for a reply forever (25% of runs).
//
// weft's rule: a fiber waits in the primitive's own waiter queue, and there is no
// side channel of notifications to go stale; each wait is claimed exactly once
// (by a sender, its deadline or cancellation), a sender that loses the claim
// hands the value to the next receiver or the buffer, and the wait is published
// only after the fiber has switched out (waiter.hpp, channel.hpp). Gate: 0 hangs
// in N runs, each run bounded by a watchdog that prints the fibers.
//
// The actors here are what an application builds on weft: a fiber serving a
// Channel mailbox, and a supervisor that joins it and, when it ends with an
// exception (the crash), starts a fresh incarnation (state from 0) on the other
// worker on the same mailbox. The caller is a plain thread, as in the incident
// (the Threaded side: Channel is the bridge), or a fiber on the other worker.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/sync/channel.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "../helpers/watchdog.hpp"

using namespace std::chrono_literals;
using weft::test::Rng;
using weft::test::Watchdog;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

enum class Kind { bump, get, crash, stop };
struct Msg {
  Kind kind = Kind::bump;
  long value = 0;                        // bump: recorded in the actor's log, if any
  weft::Channel<long>* reply = nullptr;  // get / stop: where the count goes
};
using Mailbox = weft::Channel<Msg>;

struct Crash : std::runtime_error {
  Crash() : std::runtime_error("actor crashed (intentionally)") {}
};

struct ActorOptions {
  // > 0: wait in recv_for(idle) and go round again on timed_out, so the actor
  // re-registers in its mailbox all the time (the incident's hot loop); 0: recv().
  std::chrono::microseconds idle{0};
  // Each bump's value is appended here. Incarnations never overlap (the next
  // starts after the supervisor joined the last), so no lock is needed.
  std::vector<long>* log = nullptr;
};

// One incarnation: its count starts at 0. Returns on stop; throws Crash on crash.
void actor_body(Mailbox& box, const ActorOptions& o) {
  long n = 0;
  for (;;) {
    std::optional<Msg> m;
    if (o.idle.count() > 0) {
      weft::RecvResult<Msg> r = box.recv_for(o.idle);
      if (r.status == weft::RecvStatus::timed_out) continue;
      m = r.value;
    } else {
      m = box.recv();
    }
    if (!m) throw std::logic_error("mailbox closed under a live actor");
    switch (m->kind) {
      case Kind::bump:
        ++n;
        if (o.log) o.log->push_back(m->value);
        break;
      case Kind::get:
        m->reply->send(n);
        break;
      case Kind::crash:
        throw Crash();
      case Kind::stop:
        m->reply->send(n);
        return;
    }
  }
}

// Runs incarnations of the actor until one stops; each crash starts the next on
// the other worker. Returns the number of restarts.
long supervise(weft::Runtime& rt, Mailbox& box, unsigned worker, const ActorOptions& o) {
  long restarts = 0;
  for (;;) {
    auto h = rt.spawn_on(worker, [&box, &o] { actor_body(box, o); }, {.name = "actor"});
    try {
      h.join();
      return restarts;
    } catch (const Crash&) {
      ++restarts;
      worker = (worker + 1) % rt.workers();
    }
  }
}

// Sends a get or stop and waits for the reply (a plain thread blocks, a fiber parks).
long ask(Mailbox& box, Kind k) {
  weft::Channel<long> reply(1);
  box.send(Msg{k, 0, &reply});
  std::optional<long> v = reply.recv();
  return v ? *v : -1;
}

// A pause of 0 to 1000 µs (0 a quarter of the time): the crash's restart races
// the next message at every phase.
void random_pause(Rng& rng) {
  const std::size_t us = rng.between(0, 1333);
  if (us > 1000) return;
  std::this_thread::sleep_for(std::chrono::microseconds(us));
}

weft::Config two_workers() {
  weft::Config c;
  c.workers = 2;
  return c;
}
}  // namespace

TEST_CASE("incident 004: a restarted actor still answers stop (crash, ping, get, bump, get, stop), 0 hangs in N runs") {
  const long reps = weft::test::scaled(500);
  weft::Runtime rt(two_workers());
  std::atomic<long> done{0};
  Rng rng(4004);
  long restarts = 0;
  for (long rep = 0; rep < reps; ++rep) {
    Watchdog wd("incident 004: crash/restart/stop", rt, {&done}, 60s);
    Mailbox a(16), b(16);
    const ActorOptions plain;
    auto pinger = rt.spawn_on(0, [&] { return supervise(rt, a, 0, plain); }, {.name = "sup-pinger"});
    auto crasher = rt.spawn_on(1, [&] { return supervise(rt, b, static_cast<unsigned>(rep % 2), plain); },
                               {.name = "sup-crasher"});
    random_pause(rng);
    b.send(Msg{Kind::crash});  // fire and forget
    random_pause(rng);
    a.send(Msg{Kind::bump});  // ping
    REQUIRE(ask(a, Kind::get) == 1);
    b.send(Msg{Kind::bump});  // served by the restarted incarnation, from 0
    REQUIRE(ask(b, Kind::get) == 1);
    REQUIRE(ask(a, Kind::stop) == 1);
    REQUIRE(ask(b, Kind::stop) == 1);  // the incident's hang
    REQUIRE(pinger.join() == 0);
    restarts += crasher.join();
    done.fetch_add(1, std::memory_order_relaxed);
  }
  REQUIRE(restarts == reps);
}

TEST_CASE("incident 004: messages sent between a crash and the restart wait for the new incarnation, at any capacity") {
  const std::size_t capacity = GENERATE(0, 1, 64);
  const long idle_us = GENERATE(0, 3);
  CAPTURE(capacity, idle_us);
  const long reps = weft::test::scaled(200);
  constexpr int kBumps = 8;
  weft::Runtime rt(two_workers());
  std::atomic<long> done{0};
  Rng rng(static_cast<std::uint64_t>(capacity * 10 + idle_us) + 1);
  for (long rep = 0; rep < reps; ++rep) {
    Watchdog wd("incident 004: sends across a restart", rt, {&done}, 60s);
    Mailbox box(capacity);
    ActorOptions o;
    o.idle = std::chrono::microseconds(idle_us);
    auto sup = rt.spawn_on(0, [&] { return supervise(rt, box, static_cast<unsigned>(rep % 2), o); }, {.name = "sup"});
    random_pause(rng);
    box.send(Msg{Kind::crash});
    for (int i = 0; i < kBumps; ++i) box.send(Msg{Kind::bump});  // no pause: into the restart
    REQUIRE(ask(box, Kind::get) == kBumps);
    box.send(Msg{Kind::crash});  // and once more, straight into stop
    REQUIRE(ask(box, Kind::stop) == 0);
    REQUIRE(sup.join() == 2);
    done.fetch_add(1, std::memory_order_relaxed);
  }
}

TEST_CASE(
    "incident 004: an actor re-registering on short deadlines across crashes loses, repeats and reorders no message") {
  const bool from_fiber = GENERATE(false, true);
  CAPTURE(from_fiber);
  const long n = weft::test::scaled(20000);
  constexpr long kCrashEvery = 97;
  weft::Runtime rt(two_workers());
  std::atomic<long> sent{0};
  Watchdog wd("incident 004: deadlines across crashes", rt, {&sent});
  Mailbox box(4);
  std::vector<long> log;
  log.reserve(static_cast<std::size_t>(n));
  ActorOptions o;
  o.idle = 2us;  // most waits time out between two sends: register, clear, register...
  o.log = &log;
  auto sup = rt.spawn_on(0, [&] { return supervise(rt, box, 1, o); }, {.name = "sup"});
  long crashes = 0, first_of_last = 0;  // written by produce, read after it is joined
  auto produce = [&] {
    Rng rng(404);
    for (long i = 0; i < n; ++i) {
      if (i % kCrashEvery == kCrashEvery - 1) {
        box.send(Msg{Kind::crash});
        ++crashes;
        first_of_last = i;  // the bumps from here on go to the last incarnation
      }
      box.send(Msg{Kind::bump, i});
      sent.store(i + 1, std::memory_order_relaxed);
      const std::size_t gap = rng.between(0, 7);  // 0-3: none; 4-7: a short pause
      if (gap >= 4) {
        if (from_fiber)
          weft::sleep_for(std::chrono::microseconds(gap - 3));
        else
          std::this_thread::sleep_for(std::chrono::microseconds(gap - 3));
      }
    }
  };
  if (from_fiber) {
    rt.spawn_on(1, produce, {.name = "producer"}).join();
  } else {
    produce();
  }
  const long last = ask(box, Kind::stop);  // the bumps the final incarnation served
  const long restarts = sup.join();
  REQUIRE(crashes == n / kCrashEvery);
  REQUIRE(restarts == crashes);
  REQUIRE(last == n - first_of_last);
  REQUIRE(log.size() == static_cast<std::size_t>(n));
  long out_of_place = 0;
  for (long i = 0; i < n; ++i) out_of_place += log[static_cast<std::size_t>(i)] != i;
  REQUIRE(out_of_place == 0);
}
