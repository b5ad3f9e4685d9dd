// tests/helpers/destroy_after_return.hpp — rounds in which one party destroys a sync
// object the moment its own call on it has returned, while the other party's call
// on it (the one that released it, or that it released) is still finishing.
//
// The object lives in the destroyer's own stack frame (a thread's or a fiber's).
// Once destroyed, its bytes are overwritten with a pattern; once the other party's
// call has returned too, the pattern is checked. A library that touches the object
// after the destroyer's call returned either writes into the pattern (counted, and
// the test fails naming the round) or blocks on it (the watchdog reports the hang
// with the progress counters). Each party runs as a plain thread or as a fiber (the
// destroyer on worker 0, the other party on worker 1 of a two-worker runtime).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <thread>

#include <weft/weft.hpp>

#include "test_support.hpp"
#include "watchdog.hpp"

namespace weft::test {

enum class Side { thread, fiber };
inline const char* side_name(Side s) {
  return s == Side::thread ? "a thread" : "a fiber";
}

/// Who is queued on the object before the other calls.
enum class Order {
  peer_first,       ///< the destroyer waits until the peer is queued, then calls
  destroyer_first,  ///< the peer waits until the destroyer is queued, then calls
  racing,           ///< both call at once (the peer after a random short pause)
};

/// Yields the calling fiber or thread.
inline void pause_caller() {
  if (weft::current_domain().evented())
    weft::yield();
  else
    std::this_thread::yield();
}

/// A few yields, sometimes a short sleep: lets the other party get ahead.
inline void nudge(Rng& rng) {
  for (std::size_t k = rng.between(0, 3); k > 0; --k) pause_caller();
  if (rng.next() % 4 == 0) {
    if (weft::current_domain().evented())
      weft::sleep_for(std::chrono::microseconds(20));
    else
      std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

struct DestroyResult {
  long rounds = 0;
  long corrupted = 0;         ///< rounds whose destroyed bytes were written afterwards
  long first_corrupted = -1;  ///< the first such round
  std::string error;          ///< the first exception either party's call threw
};

/// Runs `rounds` rounds. Per round the destroyer builds an Obj with make(storage),
/// hands it to the peer, calls dcall(obj) (after the peer is queued, with
/// Order::peer_first), destroys it at once and poisons its storage; the peer calls
/// pcall(obj) (after the destroyer is queued, with Order::destroyer_first) and
/// reports its return. queued(obj) says that someone waits on obj.
template <class Obj, class Make, class DCall, class PCall, class Queued>
DestroyResult destroy_after_return(Side destroyer, Side peer, Order order, long rounds, std::uint64_t seed, Make make,
                                   DCall dcall, PCall pcall, Queued queued) {
  constexpr unsigned char kPoison = 0x5a;
  struct Round {
    Obj* obj = nullptr;
    std::atomic<int> stage{0};  // 1: the peer took it; 2: the peer's call returned
  };
  weft::Runtime rt(weft::Config{.name = "destroyer", .workers = 2});
  std::atomic<Round*> mailbox{nullptr};
  Round stop;
  std::atomic<long> done{0}, corrupted{0};
  long first_corrupted = -1;
  std::mutex error_mu;
  std::string error;
  auto call = [&](auto& fn, Obj& o, const char* who) {
    try {
      fn(o);
      return true;
    } catch (const std::exception& e) {
      std::lock_guard lk(error_mu);
      if (error.empty()) error = std::string(who) + ": " + e.what();
      return false;
    }
  };
  weft::test::Watchdog wd("destroy after return", rt, {&done, &corrupted}, std::chrono::seconds(240));

  auto peer_body = [&] {
    Rng rng(seed ^ 0x9e3779b97f4a7c15ULL);
    for (;;) {
      Round* r;
      while (!(r = mailbox.exchange(nullptr))) pause_caller();
      if (r == &stop) return;
      r->stage.store(1);
      if (order == Order::destroyer_first) {
        while (!queued(*r->obj)) pause_caller();
      } else if (order == Order::racing) {
        nudge(rng);
      }
      (void)call(pcall, *r->obj, "the peer's call");
      r->stage.store(2);
    }
  };
  auto destroyer_body = [&] {
    Rng rng(seed);
    for (long i = 0; i < rounds; ++i) {
      alignas(Obj) unsigned char storage[sizeof(Obj)];
      Obj* o = make(static_cast<void*>(storage));
      Round r;
      r.obj = o;
      mailbox.store(&r);
      while (r.stage.load() < 1) pause_caller();
      if (order == Order::peer_first) {
        while (!queued(*o)) pause_caller();
        if (rng.next() % 2) nudge(rng);
      }
      if (!call(dcall, *o, "the destroyer's call")) {
        // The peer may be waiting on the object for good: nothing can end this run.
        std::fprintf(stderr, "destroy_after_return: round %ld: %s\n", i, error.c_str());
        std::fflush(stderr);
        std::abort();
      }
      o->~Obj();  // at once: the call has returned
      std::memset(storage, kPoison, sizeof storage);
      while (r.stage.load() < 2) pause_caller();
      bool intact = true;
      for (unsigned char b : storage) intact = intact && b == kPoison;
      if (!intact && corrupted.fetch_add(1) == 0) first_corrupted = i;
      done.fetch_add(1);
    }
    mailbox.store(&stop);
  };

  std::thread peer_thread;
  weft::JoinHandle<void> peer_fiber;
  if (peer == Side::thread)
    peer_thread = std::thread(peer_body);
  else
    peer_fiber = rt.spawn_on(1, peer_body, {.name = "peer"});
  if (destroyer == Side::thread)
    destroyer_body();
  else
    rt.spawn_on(0, destroyer_body, {.name = "destroyer"}).join();
  if (peer_thread.joinable()) peer_thread.join();
  if (peer_fiber.valid()) peer_fiber.join();
  return {done.load(), corrupted.load(), first_corrupted, error};
}

}  // namespace weft::test
