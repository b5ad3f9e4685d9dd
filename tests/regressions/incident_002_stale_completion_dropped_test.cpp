// Incident 002: an object was freed and recycled while the poller still
// delivered events for it (use-after-free at a fixed offset). weft's rule: ops
// are named by slot + generation; a CQE naming a finished (or recycled) slot is
// counted as stale and dropped, never dereferenced or delivered to the new owner.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

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
void prep_nop(io_uring_sqe* sqe, void*) {
  io_uring_prep_nop(sqe);
}
struct ReadArgs {
  int fd;
  char* buf;
};
void prep_read(io_uring_sqe* sqe, void* a) {
  auto* r = static_cast<ReadArgs*>(a);
  io_uring_prep_read(sqe, r->fd, r->buf, 4, 0);
}
// The first op of a fresh worker takes slot 0 at generation 1: user_data 1<<32 | 1.
constexpr std::uint64_t kFirstOpUserData = (1ULL << 32) | 1;
}  // namespace

TEST_CASE("incident 002: a forged completion for a finished op is counted stale and dropped") {
  weft::Runtime rt;
  rt.block_on([] {
    REQUIRE(here().await_op(&prep_nop, nullptr).res == 0);         // slot 0, generation 1: done
    here().submit_raw(&prep_nop, nullptr, kFirstOpUserData);       // late duplicate
    here().submit_raw(&prep_nop, nullptr, (0xdeadULL << 32) | 1);  // wrong generation
    here().submit_raw(&prep_nop, nullptr, (1ULL << 32) | 999999);  // slot never allocated
    here().submit_raw(&prep_nop, nullptr, 77ULL << 32);            // a tag never issued
    for (int i = 0; i < 5; ++i) weft::sleep_for(1ms);
  });
  REQUIRE(rt.stats().stale_completions == 4);
  REQUIRE(rt.block_on([] { return here().await_op(&prep_nop, nullptr).res; }) == 0);
}

TEST_CASE("incident 002: a stale completion naming a recycled slot does not wake its new owner") {
  weft::Runtime rt;
  int fds[2];
  REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
  rt.block_on([&] {
    REQUIRE(here().await_op(&prep_nop, nullptr).res == 0);  // slot 0 gen 1 finished, freed
    char buf[4] = {};
    int result = 12345;
    // The new owner of slot 0 (generation 2) waits for real data.
    auto reader = weft::spawn([&] {
      ReadArgs a{fds[0], buf};
      result = here().await_op(&prep_read, &a).res;
    });
    weft::sleep_for(2ms);
    // A late CQE carrying the old generation arrives while the new op is pending.
    here().submit_raw(&prep_nop, nullptr, kFirstOpUserData);
    weft::sleep_for(5ms);
    REQUIRE(result == 12345);  // not woken by the stale CQE
    REQUIRE(!reader.done());
    REQUIRE(write(fds[1], "data", 4) == 4);
    reader.join();
    REQUIRE(result == 4);
  });
  REQUIRE(rt.stats().stale_completions == 1);
  close(fds[0]);
  close(fds[1]);
}
