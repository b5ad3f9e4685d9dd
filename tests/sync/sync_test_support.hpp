// tests/sync/sync_test_support.hpp — the scaffolding the sync/ tests share: a
// fresh runtime to run one fiber in, fibers spread over a runtime's workers, a
// group of plain threads, joining them all, and the child process that destroys
// a primitive while a plain thread waits on it.
#pragma once

#include <thread>
#include <type_traits>
#include <vector>

#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

namespace weft::test {

/// Runs fn(rt) in a fiber (block_on) of a fresh default Runtime rt, which is
/// destroyed once fn has returned; returns fn's result.
template <class Fn>
auto block_on_fresh_runtime(Fn&& fn) {
  Runtime rt;
  return rt.block_on([&] { return fn(rt); });
}

/// Spawns n fibers on `rt`, fiber i on worker i % rt.workers(); each runs its own
/// copy of fn, called as fn(i) if it takes the index, else fn().
template <class Fn>
std::vector<JoinHandle<void>> spawn_across_workers(Runtime& rt, long n, Fn fn) {
  std::vector<JoinHandle<void>> hs;
  hs.reserve(static_cast<std::size_t>(n));
  for (long i = 0; i < n; ++i) {
    const auto worker = static_cast<unsigned>(i % rt.workers());
    if constexpr (std::is_invocable_v<Fn&, long>)
      hs.push_back(rt.spawn_on(worker, [fn, i]() mutable { fn(i); }));
    else
      hs.push_back(rt.spawn_on(worker, fn));
  }
  return hs;
}

/// Starts n plain threads, each running its own copy of fn().
template <class Fn>
std::vector<std::thread> start_threads(int n, Fn fn) {
  std::vector<std::thread> ts;
  for (int i = 0; i < n; ++i) ts.emplace_back(fn);
  return ts;
}

/// Joins every JoinHandle or std::thread of `all`, in order.
template <class Handles>
void join_all(Handles& all) {
  for (auto& h : all) h.join();
}

/// In a child process (run_in_child): p = make() (a new'd primitive), a plain
/// thread parks in wait(*p), then p is deleted while it waits. The caller checks
/// that the child died with the primitive's "destroyed while" message.
template <class Make, class Wait>
ChildResult destroy_while_a_thread_waits(Make make, Wait wait) {
  return run_in_child([&] {
    auto* p = make();
    std::thread t([p, &wait] { wait(*p); });
    while (!p->has_waiters()) std::this_thread::yield();
    delete p;  // aborts here
    t.detach();
    return 0;
  });
}

}  // namespace weft::test
