// A ring under pressure keeps every op's meaning: with the SQ full (real: a ring
// of 2 entries, or injected by the explorer) and the kernel refusing submits
// (-EBUSY, injected), ops queue and are issued in order, an op is never split
// from its linked timeout (its deadline holds), nothing spins, and a wake whose
// MSG_RING fails still reaches its worker — of this runtime or of another.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/runtime/uring/worker.hpp>
#include <weft/sync/event.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "../helpers/watchdog.hpp"

using namespace std::chrono_literals;

namespace {
const bool kUring = (weft::test::require_io_uring_engine(), true);

weft::Config pressured(std::uint32_t kinds, unsigned faults, unsigned ring_entries = 256) {
  weft::Config c;
  c.ring_entries = ring_entries;
  c.explore.seed = 12345;
  c.explore.faults = faults;
  c.explore.kinds = kinds;
  return c;
}

// Many fibers echo over loopback; returns the bytes that came back intact.
long echo_round(weft::Runtime& rt, int pairs, int msgs) {
  return rt.block_on([&] {
    auto lst = weft::net::TcpListener::bind(weft::net::Address::parse("127.0.0.1:0"));
    std::vector<weft::JoinHandle<long>> hs;
    for (int i = 0; i < pairs; ++i) {
      hs.push_back(weft::spawn([&] {
        auto s = lst.accept();
        char buf[64];
        long n = 0;
        for (;;) {
          const std::size_t got = s.read_some(buf, sizeof buf);
          if (got == 0) return n;
          s.write_all(buf, got);
          n += static_cast<long>(got);
        }
      }));
      hs.push_back(weft::spawn([&, i] {
        auto c = weft::net::TcpStream::connect(lst.local_address());
        long ok = 0;
        for (int m = 0; m < msgs; ++m) {
          const std::string out = "msg-" + std::to_string(i) + "-" + std::to_string(m);
          c.write_all(out.data(), out.size());
          std::string in(out.size(), '\0');
          c.read_exact(in.data(), in.size());
          if (in == out) ok += static_cast<long>(in.size());
        }
        c.close();
        return ok;
      }));
    }
    long total = 0;
    for (std::size_t k = 1; k < hs.size(); k += 2) total += hs[k].join();
    for (std::size_t k = 0; k < hs.size(); k += 2) hs[k].join();
    return total;
  });
}

long expected_bytes(int pairs, int msgs) {
  long n = 0;
  for (int i = 0; i < pairs; ++i)
    for (int m = 0; m < msgs; ++m)
      n += static_cast<long>(("msg-" + std::to_string(i) + "-" + std::to_string(m)).size());
  return n;
}
}  // namespace

TEST_CASE("with a 2-entry ring every op of 16 echo connections completes in order") {
  weft::Runtime rt(weft::Config{.ring_entries = 2});
  std::atomic<long> progress{0};
  weft::test::Watchdog dog("2-entry ring echo", rt, {&progress}, 120s);
  REQUIRE(echo_round(rt, 16, 50) == expected_bytes(16, 50));
  REQUIRE(rt.stats().sq_full > 0);
}

TEST_CASE("with the SQ injected full and submits refused ops queue and complete in order") {
  weft::Runtime rt(pressured(weft::Explore::sq_full | weft::Explore::refuse_submit, 300));
  std::atomic<long> progress{0};
  weft::test::Watchdog dog("SQ full echo", rt, {&progress}, 120s);
  REQUIRE(echo_round(rt, 8, 50) == expected_bytes(8, 50));
  const auto st = rt.stats();
  REQUIRE(st.faults_injected > 0);
  REQUIRE(st.sq_waits > 0);  // ops went through the overflow queue
}

TEST_CASE("an op queued behind a full SQ keeps its deadline") {
  weft::Runtime rt(pressured(weft::Explore::sq_full | weft::Explore::refuse_submit, 500));
  rt.block_on([] {
    auto lst = weft::net::TcpListener::bind(weft::net::Address::parse("127.0.0.1:0"));
    auto c = weft::net::TcpStream::connect(lst.local_address());
    auto s = lst.accept();
    for (int i = 0; i < 50; ++i) {
      char b;
      try {
        (void)s.read_some(&b, 1, 1ms);  // nothing is ever written: it must time out
        FAIL("read returned without data");
      } catch (const std::system_error& e) {
        REQUIRE(e.code() == std::errc::timed_out);
      }
    }
  });
}

TEST_CASE("a fiber cancelled while its op waits in the overflow queue ends without the op being issued") {
  weft::Runtime rt(pressured(weft::Explore::sq_full, 1000));  // every reserve refused: ops stay queued
  rt.block_on([] {
    auto h = weft::spawn([] {
      return weft::detail::t_state.worker->await_op([](io_uring_sqe* sqe, void*) { io_uring_prep_nop(sqe); }, nullptr)
          .res;
    });
    weft::sleep_for(2ms);
    REQUIRE_FALSE(h.done());  // never issued, so never completed
    h.cancel();
    REQUIRE(h.join() == -ECANCELED);  // the op's own result: it ended without the kernel
  });
  REQUIRE(rt.stats().sq_waits > 0);
}

TEST_CASE("a wake whose MSG_RING fails falls back to the target worker's eventfd") {
  // Every MSG_RING sent fails (EBADF): fibers on two workers wake each other.
  weft::Runtime rt(
      weft::Config{.workers = 2, .explore = {.seed = 7, .faults = 1000, .kinds = weft::Explore::fail_wake}});
  const long rounds = weft::test::scaled(2000);
  std::atomic<long> progress{0};
  weft::test::Watchdog dog("failed MSG_RING wakes", rt, {&progress}, 120s);
  weft::Event ping(rt, weft::Event::Mode::auto_reset), pong(rt, weft::Event::Mode::auto_reset);
  auto a = rt.spawn_on(0, [&] {
    for (long i = 0; i < rounds; ++i) {
      ping.set();
      pong.wait();
      progress.fetch_add(1);
    }
  });
  auto b = rt.spawn_on(1, [&] {
    for (long i = 0; i < rounds; ++i) {
      ping.wait();
      pong.set();
    }
  });
  a.join();
  b.join();
  REQUIRE(rt.stats().faults_injected > 0);
}

TEST_CASE("a fiber of one runtime wakes a fiber of another while MSG_RING wakes fail") {
  const weft::Config failing{.explore = {.seed = 9, .faults = 1000, .kinds = weft::Explore::fail_wake}};
  weft::Runtime a(failing), b(failing);
  const long rounds = weft::test::scaled(1000);
  std::atomic<long> progress{0};
  weft::test::Watchdog dog("cross-runtime wakes", a, {&progress}, 120s);
  std::atomic<weft::detail::Waiter*> slot{nullptr};
  auto waiter = b.spawn([&] {
    for (long i = 0; i < rounds; ++i) {
      weft::detail::Waiter w;
      slot.store(&w, std::memory_order_release);
      if (w.wait() != weft::detail::Waiter::Result::notified) return false;
      progress.fetch_add(1);
    }
    return true;
  });
  auto waker = a.spawn([&] {
    long n = 0;
    while (n < rounds) {
      weft::detail::Waiter* w = slot.exchange(nullptr, std::memory_order_acq_rel);
      if (w && w->notify())
        ++n;
      else
        weft::sleep_for(50us);  // let b's worker fall asleep: the wake must reach it
    }
  });
  REQUIRE(waiter.join());
  waker.join();
}
