// JoinHandle::cancel(): a fiber can be cancelled by another — before it runs, while
// it sleeps, waits or runs an I/O op, from any thread — and a cancellation that
// arrives while it unwinds an exception (a destructor that blocks) or inside a
// DeferCancellation scope waits instead of turning into std::terminate.
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include <catch2/catch.hpp>

#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/runtime/test_access.hpp>
#include <weft/runtime/uring/worker.hpp>
#include <weft/sync/channel.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

template <class R>
bool ends_cancelled(weft::JoinHandle<R>& h) {
  try {
    h.join();
  } catch (const weft::FiberCancelled&) {
    return true;
  }
  return false;
}
}  // namespace

TEST_CASE("a fiber cancelled while it sleeps ends with FiberCancelled at once") {
  weft::Runtime rt;
  std::atomic<bool> parked{false}, after{false};
  auto h = rt.spawn([&] {
    parked = true;
    weft::sleep_for(std::chrono::hours(1));
    after = true;
  });
  while (!parked) std::this_thread::yield();
  rt.block_on([] { weft::sleep_for(1ms); });  // let it reach the park
  h.cancel();
  REQUIRE(ends_cancelled(h));
  REQUIRE_FALSE(after);
}

TEST_CASE("a fiber cancelled before it ran never runs its body") {
  weft::Runtime rt;
  std::atomic<int> ran{0};
  rt.block_on([&] {
    auto h = weft::spawn([&] { ran = 1; });  // queued behind us: not started yet
    h.cancel();
    REQUIRE(ends_cancelled(h));
  });
  REQUIRE(ran == 0);
}

TEST_CASE("cancel from a plain thread and from a fiber on another worker reaches the fiber") {
  weft::Runtime rt(weft::Config{.workers = 2});
  for (int from_fiber = 0; from_fiber < 2; ++from_fiber) {
    weft::Channel<int> never(0);
    std::atomic<bool> waiting{false};
    auto h = rt.spawn_on(0, [&] {
      waiting = true;
      return never.recv().value_or(-1);
    });
    while (!waiting) std::this_thread::yield();
    if (from_fiber) {
      rt.spawn_on(1, [&] { h.cancel(); }).join();
    } else {
      std::thread([&] { h.cancel(); }).join();
    }
    REQUIRE(ends_cancelled(h));
  }
}

TEST_CASE("a fiber cancelled in an accept ends after the op's completion with no op left in flight") {
  weft::Runtime rt;
  rt.block_on([] {
    auto lst = weft::net::TcpListener::bind(weft::net::Address::parse("127.0.0.1:0"));
    auto h = weft::spawn([&] { (void)lst.accept(); });
    weft::sleep_for(2ms);  // parked in the accept op
    h.cancel();
    REQUIRE(ends_cancelled(h));
    // The listener is still usable: its op ended; nothing is pending on it.
    auto peer = weft::spawn([&] { return weft::net::TcpStream::connect(lst.local_address()); });
    auto s = lst.accept();
    REQUIRE(s.is_open());
    peer.join();
  });
}

TEST_CASE("cancel of a finished fiber is a no-op and cancel may be repeated") {
  weft::Runtime rt;
  auto h = rt.spawn([] { return 7; });
  while (!h.done()) std::this_thread::yield();
  h.cancel();
  h.cancel();
  REQUIRE(h.join() == 7);
  auto g = rt.spawn([] { weft::sleep_for(std::chrono::hours(1)); });
  for (int i = 0; i < 10; ++i) g.cancel();
  REQUIRE(ends_cancelled(g));
}

TEST_CASE("a cancellation that arrives while a destructor blocks during unwinding waits for it") {
  weft::Runtime rt;
  std::atomic<bool> in_dtor{false}, dtor_done{false};
  struct Cleanup {
    std::atomic<bool>* in;
    std::atomic<bool>* done;
    ~Cleanup() {
      *in = true;
      weft::sleep_for(20ms);  // blocks while the exception below is in flight
      *done = true;
    }
  };
  auto h = rt.spawn([&] {
    Cleanup c{&in_dtor, &dtor_done};
    throw std::runtime_error("original");
  });
  while (!in_dtor) std::this_thread::yield();
  h.cancel();  // without deferral the sleep would throw out of the destructor: terminate
  std::string what;
  try {
    h.join();
  } catch (const std::runtime_error& e) {
    what = e.what();
  }
  REQUIRE(dtor_done);
  REQUIRE(what == "original");
}

TEST_CASE("inside a DeferCancellation scope a cancellation waits for the first blocking call after it") {
  weft::Runtime rt;
  std::atomic<int> stage{0};
  auto h = rt.spawn([&] {
    {
      weft::this_fiber::DeferCancellation defer;
      stage = 1;
      weft::sleep_for(20ms);  // cancelled meanwhile: completes anyway
      REQUIRE(weft::this_fiber::cancelled());
      stage = 2;
    }
    weft::yield();  // the first blocking call after the scope
    stage = 3;
  });
  while (stage.load() < 1) std::this_thread::yield();
  h.cancel();
  REQUIRE(ends_cancelled(h));
  REQUIRE(stage == 2);
}

TEST_CASE("a cancel handed to a worker that stops before running it still frees the fiber") {
  // The cancelled fiber's result lives in its fiber object: counted, it tells
  // whether the object was freed.
  static std::atomic<int> live{0};
  struct Counted {
    Counted() { live.fetch_add(1); }
    Counted(Counted&&) noexcept { live.fetch_add(1); }
    Counted(const Counted&) = delete;
    ~Counted() { live.fetch_sub(1); }
  };
  {
    weft::Runtime rt(weft::Config{.workers = 2});
    weft::Event never(rt);
    auto victim = rt.spawn_on(1, [&never] {
      try {
        never.wait();
      } catch (const weft::FiberCancelled&) {
      }
      return Counted();
    });
    while (!never.has_waiters()) std::this_thread::yield();
    // Worker 1 busy until the runtime stops: the cancel below waits in its inbox.
    std::atomic<bool> spinning{false};
    rt.spawn_on(1, [&] {
        spinning = true;
        while (!weft::detail::TestAccess::worker(rt, 1).stopping()) {
        }
      }).detach();
    while (!spinning) std::this_thread::yield();
    rt.spawn_on(0, [&] { victim.cancel(); }).join();  // hands the cancel to worker 1
    victim.detach();
    rt.shutdown();  // worker 1 cancels everything itself, then finds the hand-over
  }
  REQUIRE(live.load() == 0);
}
