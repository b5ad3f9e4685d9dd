// A worker's ring under pressure (Config::ring_entries of 2 and 4, so a
// submission queue of 2 or 4 and a completion queue of 8 or 16): many fibers
// submitting in the same tick fill the SQ (flushed early, counted in
// stats().sq_full), and more completions at once than the CQ holds overflow it
// (the kernel keeps the extra CQEs until they are reaped). Every op still gets
// its own result, every linked deadline and every sleep still fires, none is lost.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/runtime/uring/worker.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "../helpers/watchdog.hpp"

using namespace std::chrono_literals;

namespace {
const bool kUring = (weft::test::require_io_uring_engine(), true);

weft::detail::Worker& here() {
  return *weft::detail::t_state.worker;
}

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
    r = fds[0];
    w = fds[1];
  }
  Pipe(const Pipe&) = delete;
  ~Pipe() {
    close(r);
    close(w);
  }
};

struct ReadArgs {
  int fd;
  char* buf;
  unsigned len;
};
void prep_read(io_uring_sqe* sqe, void* a) {
  auto* r = static_cast<ReadArgs*>(a);
  io_uring_prep_read(sqe, r->fd, r->buf, r->len, 0);
}
void prep_nop(io_uring_sqe* sqe, void*) {
  io_uring_prep_nop(sqe);
}

weft::Config tiny_ring(unsigned entries) {
  weft::Config cfg;
  cfg.ring_entries = entries;
  return cfg;
}
}  // namespace

TEST_CASE("an SQ of 2 entries: 64 fibers submitting plain and linked ops in one tick all get their results") {
  weft::Runtime rt(tiny_ring(2));
  const int rounds = static_cast<int>(weft::test::scaled(200));
  std::atomic<long> progress{0};
  weft::test::Watchdog wd("SQ of 2", rt, {&progress}, 120s);
  const long wrong = rt.block_on([&] {
    std::vector<weft::JoinHandle<long>> hs;
    for (int f = 0; f < 64; ++f)
      hs.push_back(weft::spawn([&, f] {
        long bad = 0;
        for (int r = 0; r < rounds; ++r) {
          // A plain NOP, then one with a linked deadline far away (2 SQEs, 2 CQEs).
          bad += here().await_op(&prep_nop, nullptr).res != 0;
          bad += here().await_op(&prep_nop, nullptr, weft::Deadline::after(10s)).res != 0;
          if ((r + f) % 8 == 0) weft::sleep_for(std::chrono::microseconds((r * 7 + f) % 50));
          progress.fetch_add(1, std::memory_order_relaxed);
        }
        return bad;
      }));
    long bad = 0;
    for (auto& h : hs) bad += h.join();
    return bad;
  });
  const auto st = rt.stats();
  INFO("sq_full " << st.sq_full << ", cq_overflow " << st.cq_overflow << ", sqes " << st.sqes_submitted);
  REQUIRE(wrong == 0);
  REQUIRE(st.sq_full > 0);
}

TEST_CASE("a CQ of 8 entries: 64 reads completing at once (8x what it holds) each get their own bytes") {
  weft::Runtime rt(tiny_ring(2));
  constexpr int kReaders = 64;
  const int rounds = static_cast<int>(weft::test::scaled(20));
  std::vector<Pipe> pipes(kReaders);
  std::atomic<int> parked{0};
  std::atomic<long> progress{0};
  weft::test::Watchdog wd("CQ of 8", rt, {&progress}, 120s);
  for (int round = 0; round < rounds; ++round) {
    parked = 0;
    std::vector<weft::JoinHandle<int>> hs;
    for (int i = 0; i < kReaders; ++i)
      hs.push_back(rt.spawn([&, i]() -> int {
        char buf[8] = {};
        ReadArgs a{pipes[static_cast<std::size_t>(i)].r, buf, sizeof buf};
        parked.fetch_add(1);  // its read goes in flight at the next enter
        const int n = here().await_op(&prep_read, &a).res;
        return n == 1 ? static_cast<unsigned char>(buf[0]) : -1000 + n;
      }));
    while (parked.load() < kReaders) std::this_thread::yield();
    std::this_thread::sleep_for(5ms);  // the worker submits the reads and sleeps in the ring
    // Every read completes now, while the worker sleeps: 64 CQEs for a CQ of 8.
    for (int i = 0; i < kReaders; ++i) {
      const char byte = static_cast<char>(i + round);
      REQUIRE(write(pipes[static_cast<std::size_t>(i)].w, &byte, 1) == 1);
    }
    for (int i = 0; i < kReaders; ++i) {
      INFO("round " << round << ", reader " << i);
      REQUIRE(hs[static_cast<std::size_t>(i)].join() == static_cast<unsigned char>(i + round));
    }
    progress.fetch_add(1);
  }
  REQUIRE(rt.stats().cqes_reaped >= static_cast<std::uint64_t>(kReaders * rounds));
  REQUIRE(rt.stats().cq_overflow > 0);  // 64 completions for a CQ of 8: the kernel kept the rest
}

TEST_CASE("an SQ of 4 entries: deadlines that expire, reads that complete, NOPs and sleeps all end right") {
  weft::Runtime rt(tiny_ring(4));
  constexpr int kFibers = 48;
  const int rounds = static_cast<int>(weft::test::scaled(100));
  std::vector<Pipe> pipes(kFibers);
  std::atomic<long> progress{0};
  weft::test::Watchdog wd("SQ of 4 mixed", rt, {&progress}, 120s);
  const long wrong = rt.block_on([&] {
    std::vector<weft::JoinHandle<long>> hs;
    for (int f = 0; f < kFibers; ++f)
      hs.push_back(weft::spawn([&, f] {
        weft::test::Rng rng(static_cast<std::uint64_t>(f));
        Pipe& p = pipes[static_cast<std::size_t>(f)];
        long bad = 0;
        for (int r = 0; r < rounds; ++r) {
          char buf[4] = {};
          ReadArgs a{p.r, buf, 1};
          switch (rng.between(0, 3)) {
            case 0: {  // nothing to read: the linked deadline (20-200 us) must cancel it
              const auto in = static_cast<std::int64_t>(rng.between(20'000, 200'000));
              bad += here().await_op(&prep_read, &a, weft::Deadline::after(std::chrono::nanoseconds(in))).res !=
                     -ECANCELED;
              break;
            }
            case 1: {  // a byte is there: the read completes before its deadline
              const char c = static_cast<char>('a' + r % 26);
              bad += write(p.w, &c, 1) != 1;
              bad += here().await_op(&prep_read, &a, weft::Deadline::after(10s)).res != 1;
              bad += buf[0] != c;
              break;
            }
            case 2:
              bad += here().await_op(&prep_nop, nullptr).res != 0;
              break;
            default: {
              const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(rng.between(0, 300));
              weft::sleep_until(until);
              bad += std::chrono::steady_clock::now() < until;
              break;
            }
          }
          progress.fetch_add(1, std::memory_order_relaxed);
        }
        return bad;
      }));
    long bad = 0;
    for (auto& h : hs) bad += h.join();
    return bad;
  });
  const auto st = rt.stats();
  INFO("sq_full " << st.sq_full << ", cq_overflow " << st.cq_overflow << ", timers fired " << st.timers_fired);
  REQUIRE(wrong == 0);
  REQUIRE(st.sq_full > 0);
}
