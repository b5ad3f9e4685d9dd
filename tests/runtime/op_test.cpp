// Ops on the ring: results, linked deadlines, why an op ended (OpEnd, decided by
// the op's own CQEs, never by the clock), and the rule that a fiber resumes only
// after the op's last CQE.
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
const bool kUring = (weft::test::require_io_uring_engine(), true);

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
void prep_cancel_fd(io_uring_sqe* sqe, void* fd) {
  io_uring_prep_cancel_fd(sqe, *static_cast<int*>(fd), IORING_ASYNC_CANCEL_ALL);
}
using Cause = weft::detail::OpEnd::Cause;
}  // namespace

TEST_CASE("a NOP op completes with result 0") {
  weft::Runtime rt;
  REQUIRE(rt.block_on([] { return here().await_op(&prep_nop, nullptr).res; }) == 0);
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
    int n = here().await_op(&prep_read, &a).res;
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
    int n = here().await_op(&prep_read, &a, deadline).res;
    const std::uint64_t reaped = rt.stats().cqes_reaped - reaped_before;
    REQUIRE(n == -ECANCELED);
    REQUIRE(std::chrono::steady_clock::now() - t0 >= 5ms);
    // Nothing else is in flight: the read's CQE and its link timeout's were
    // reaped before this fiber resumed (it must not run while the kernel still
    // owes a CQE naming its slot).
    REQUIRE(reaped >= 2);
  });
}

TEST_CASE("a read whose linked timeout fired ends timed out, by the timeout's CQE, also at the exact boundary") {
  weft::Runtime rt;
  Pipe p;
  rt.block_on([&] {
    char buf[8];
    ReadArgs a{p.r, buf, sizeof buf};
    // Deadline::after(0s) is the clock's reading when it is made: the boundary
    // itself. The worker reads no clock; the timeout's -ETIME says it fired.
    const weft::detail::OpEnd at_boundary = here().await_op(&prep_read, &a, weft::Deadline::after(0s));
    REQUIRE(at_boundary.res == -ECANCELED);
    REQUIRE(at_boundary.cause == Cause::timed_out);
    const weft::detail::OpEnd later = here().await_op(&prep_read, &a, weft::Deadline::after(1ms));
    REQUIRE(later.res == -ECANCELED);
    REQUIRE(later.cause == Cause::timed_out);
  });
}

TEST_CASE("a read with a deadline that a cancel by fd ends first is cancelled, not timed out") {
  weft::Config cfg;
  cfg.workers = 1;  // the fibers below share the worker (and its ring)
  weft::Runtime rt(cfg);
  Pipe p;
  rt.block_on([&] {
    char buf[8];
    ReadArgs a{p.r, buf, sizeof buf};
    // Runs once the read is parked; its cancel goes to the kernel after the read.
    auto canceller = weft::spawn([&] {
      int fd = p.r;
      here().submit_raw(&prep_cancel_fd, &fd, weft::detail::kTagIgnore);
    });
    const weft::detail::OpEnd end = here().await_op(&prep_read, &a, weft::Deadline::after(std::chrono::hours(1)));
    canceller.join();
    REQUIRE(end.res == -ECANCELED);
    REQUIRE(end.cause == Cause::cancelled);
  });
}

TEST_CASE("a read of a fiber cancelled while it waits, deadline or none, ends cancelled") {
  weft::Config cfg;
  cfg.workers = 1;  // the fibers below share the worker (and its ring)
  weft::Runtime rt(cfg);
  Pipe p;
  rt.block_on([&] {
    for (const weft::Deadline d : {weft::Deadline::none(), weft::Deadline::after(std::chrono::hours(1))}) {
      weft::detail::OpEnd end{0, Cause::completed};
      auto reader = weft::spawn([&] {
        char buf[8];
        ReadArgs a{p.r, buf, sizeof buf};
        end = here().await_op(&prep_read, &a, d);
      });
      weft::yield();  // the reader runs and parks in its read
      reader.cancel();
      try {
        reader.join();
      } catch (const weft::FiberCancelled&) {
      }
      REQUIRE(end.res == -ECANCELED);
      REQUIRE(end.cause == Cause::cancelled);
    }
  });
}

TEST_CASE("an op's end cause: only a cancelled op whose timeout says it fired is timed out; a result stands") {
  using weft::detail::OpEnd;
  // The timer fired: -ETIME (it cancelled the op), -EALREADY or -ENOENT (it
  // interrupted the op running in a kernel worker). Disarmed: -ECANCELED.
  STATIC_REQUIRE(OpEnd::timer_fired(-ETIME));
  STATIC_REQUIRE(OpEnd::timer_fired(-EALREADY));
  STATIC_REQUIRE(OpEnd::timer_fired(-ENOENT));
  STATIC_REQUIRE_FALSE(OpEnd::timer_fired(-ECANCELED));
  // The timer fired and the op ended cancelled or interrupted.
  STATIC_REQUIRE(OpEnd::cause_of(-ECANCELED, true, false) == Cause::timed_out);
  STATIC_REQUIRE(OpEnd::cause_of(-EINTR, true, false) == Cause::timed_out);
  STATIC_REQUIRE(OpEnd::cause_of(-ECANCELED, true, true) == Cause::timed_out);
  // The timer fired while the op completed: its bytes, or its own error, stand.
  STATIC_REQUIRE(OpEnd::cause_of(5, true, false) == Cause::completed);
  STATIC_REQUIRE(OpEnd::cause_of(0, true, false) == Cause::completed);
  STATIC_REQUIRE(OpEnd::cause_of(-ECONNRESET, true, false) == Cause::completed);
  // The op ended first (its timer disarmed, or none linked).
  STATIC_REQUIRE(OpEnd::cause_of(-ECANCELED, false, false) == Cause::cancelled);
  STATIC_REQUIRE(OpEnd::cause_of(3, false, false) == Cause::completed);
  // An -EINTR of its own is for the caller to retry, unless the fiber asked for a cancel.
  STATIC_REQUIRE(OpEnd::cause_of(-EINTR, false, false) == Cause::completed);
  STATIC_REQUIRE(OpEnd::cause_of(-EINTR, false, true) == Cause::cancelled);
}

TEST_CASE("a linked deadline that does not expire leaves the result intact") {
  weft::Runtime rt;
  Pipe p;
  REQUIRE(write(p.w, "x", 1) == 1);
  rt.block_on([&] {
    char buf[8];
    ReadArgs a{p.r, buf, sizeof buf};
    int n = here().await_op(&prep_read, &a, weft::Deadline::after(10s)).res;
    REQUIRE(n == 1);
    // Completed first: its timeout was cancelled, and the cause says so.
    REQUIRE(write(p.w, "y", 1) == 1);
    const weft::detail::OpEnd end = here().await_op(&prep_read, &a, weft::Deadline::after(10s));
    REQUIRE(end.res == 1);
    REQUIRE(end.cause == Cause::completed);
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
        res = here().await_op(&prep_read, &a).res;
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
        for (int r = 0; r < rounds; ++r) failed += here().await_op(&prep_nop, nullptr).res != 0;
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
