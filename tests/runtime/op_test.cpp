// Ops on the ring: results, linked deadlines, and the rule that a fiber resumes
// only after the op's last CQE.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/runtime/uring/worker.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

weft::detail::Worker& here() {
  return *weft::detail::t_state.worker;
}

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
    r = fds[0];
    w = fds[1];
  }
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
}  // namespace

TEST_CASE("a NOP op completes with result 0") {
  weft::Runtime rt;
  REQUIRE(rt.block_on([] { return here().await_op(&prep_nop, nullptr); }) == 0);
}

TEST_CASE("a read op parks the fiber until another fiber writes, and returns the byte count") {
  weft::Runtime rt;
  Pipe p;
  rt.block_on([&] {
    auto writer = weft::spawn([&] {
      weft::sleep_for(2ms);
      REQUIRE(write(p.w, "hello", 5) == 5);
    });
    char buf[16] = {};
    ReadArgs a{p.r, buf, sizeof buf};
    int n = here().await_op(&prep_read, &a);
    REQUIRE(n == 5);
    REQUIRE(std::memcmp(buf, "hello", 5) == 0);
    writer.join();
  });
}

TEST_CASE("a linked deadline cancels a read that never completes; the fiber resumes with both its CQEs reaped") {
  weft::Runtime rt;
  Pipe p;
  rt.block_on([&] {
    char buf[8];
    ReadArgs a{p.r, buf, sizeof buf};
    auto t0 = std::chrono::steady_clock::now();
    const std::uint64_t reaped_before = rt.stats().cqes_reaped;  // this worker's count: exact here
    const weft::Deadline deadline = weft::Deadline::after(5ms);
    int n = here().await_op(&prep_read, &a, deadline);
    const std::uint64_t reaped = rt.stats().cqes_reaped - reaped_before;
    REQUIRE(n == -ECANCELED);
    REQUIRE(std::chrono::steady_clock::now() - t0 >= 5ms);
    // Nothing else is in flight: the read's CQE and its link timeout's were
    // reaped before this fiber resumed (it must not run while the kernel still
    // owes a CQE naming its slot).
    REQUIRE(reaped >= 2);
  });
}

TEST_CASE("a linked deadline that does not expire leaves the result intact") {
  weft::Runtime rt;
  Pipe p;
  REQUIRE(write(p.w, "x", 1) == 1);
  rt.block_on([&] {
    char buf[8];
    ReadArgs a{p.r, buf, sizeof buf};
    int n = here().await_op(&prep_read, &a, weft::Deadline::after(10s));
    REQUIRE(n == 1);
  });
}

TEST_CASE("shutdown cancels a fiber blocked in a read and waits for the op's completion") {
  Pipe p;
  int res = 1;
  {
    weft::Runtime rt;
    rt.spawn([&] {
        char buf[8];
        ReadArgs a{p.r, buf, sizeof buf};
        res = here().await_op(&prep_read, &a);
      }).detach();
    // Let it reach the read.
    rt.block_on([] { weft::sleep_for(5ms); });
  }  // ~Runtime: cancel, wait for the CQE, stop
  REQUIRE(res == -ECANCELED);
}

namespace {
// `fibers` fibers each run `rounds` NOP ops; returns the io_uring_enter calls made.
// A NOP completes when it is submitted, so after each enter every fiber is ready
// again: how many enters a round takes shows how many fibers one tick runs.
std::uint64_t enters_for_nop_rounds(unsigned tick_budget, int fibers, int rounds) {
  weft::Config cfg;
  cfg.workers = 1;
  cfg.tick_budget = tick_budget;
  weft::Runtime rt(cfg);
  int failures = 0;
  const std::uint64_t enters = rt.block_on([&] {
    const std::uint64_t before = rt.stats().enters;
    std::vector<weft::JoinHandle<int>> hs;
    for (int f = 0; f < fibers; ++f)
      hs.push_back(weft::spawn([rounds] {
        int failed = 0;
        for (int r = 0; r < rounds; ++r) failed += here().await_op(&prep_nop, nullptr) != 0;
        return failed;
      }));
    for (auto& h : hs) failures += h.join();
    return rt.stats().enters - before;
  });
  REQUIRE(failures == 0);
  return enters;
}
}  // namespace

TEST_CASE("a tick runs every fiber that was ready when it began before entering the ring again") {
  // tick_budget 4 alone would take 64 / 4 = 16 enters per round, 320 in all.
  const std::uint64_t enters = enters_for_nop_rounds(4, 64, 20);
  INFO("enters: " << enters);
  REQUIRE(enters < 20 * 4);
}

TEST_CASE("a tick runs at most 16 x tick_budget fibers however many are ready") {
  // tick_budget 1: at most 16 activations per tick, so 64 ready fibers take at
  // least 4 ticks, each ending with an enter that submits their NOPs.
  const std::uint64_t enters = enters_for_nop_rounds(1, 64, 20);
  INFO("enters: " << enters);
  REQUIRE(enters >= 20 * 64 / 16);
}
