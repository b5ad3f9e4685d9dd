// A Channel destroyed while fibers or threads are blocked on it aborts at once
// with a message naming it and what waits, as every other sync primitive does;
// silently freed, its waiters would later lock freed memory (and the runtime would
// hang at teardown). Each case runs in a forked child that must die of SIGABRT.
#include <csignal>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include <weft/sync/channel.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using Catch::Matchers::Contains;
using weft::Channel;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

void require_aborted_with(const weft::test::ChildResult& r, const std::string& waiting) {
  INFO(r.output);
  REQUIRE(r.signaled);
  REQUIRE(r.signal == SIGABRT);
  REQUIRE_THAT(r.output, Contains("weft: FATAL: weft::Channel (capacity "));
  REQUIRE_THAT(r.output, Contains("destroyed while " + waiting + " blocked on it"));
  REQUIRE_THAT(r.output, Contains("close() it"));
}
}  // namespace

TEST_CASE("a Channel destroyed while a thread is blocked in recv() aborts naming it") {
  const auto r = weft::test::run_in_child([] {
    auto* ch = new Channel<int>(0);
    std::thread t([ch] { (void)ch->recv(); });
    while (!ch->has_waiters()) std::this_thread::yield();
    delete ch;  // aborts here
    t.detach();
    return 0;
  });
  require_aborted_with(r, "1 receiver(s) and 0 sender(s) are");
}

TEST_CASE("a Channel destroyed while a thread is blocked in send() aborts naming it") {
  const auto r = weft::test::run_in_child([] {
    auto* ch = new Channel<int>(1);
    ch->send(1);
    std::thread t([ch] { ch->send(2); });
    while (!ch->has_waiters()) std::this_thread::yield();
    delete ch;
    t.detach();
    return 0;
  });
  require_aborted_with(r, "0 receiver(s) and 1 sender(s) are");
}

TEST_CASE("a Channel destroyed while a fiber is blocked on it aborts naming it") {
  const auto r = weft::test::run_in_child([] {
    auto* rt = new weft::Runtime();  // never destroyed: the child dies first
    auto* ch = new Channel<int>(4);
    for (int i = 0; i < 4; ++i) ch->send(i);
    rt->spawn([ch] { ch->send(4); }).detach();
    while (!ch->has_waiters()) std::this_thread::yield();
    delete ch;
    return 0;
  });
  require_aborted_with(r, "0 receiver(s) and 1 sender(s) are");
}
