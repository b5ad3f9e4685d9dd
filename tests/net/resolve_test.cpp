// resolve(): names go through the runtime's pool and come back in order without
// duplicates; numeric hosts never touch the pool; getaddrinfo's errors carry its
// message; a lookup that outlives its deadline gives the fiber timed_out at the
// deadline while the late result is freed on the pool side (the ASan build checks
// there is no use-after-free or leak); from a plain thread the lookup runs inline.
// This machine may have no DNS: only "localhost" and names under ".invalid" are used.
#include <netdb.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/net/resolve.hpp>
#include <weft/runtime/threaded/thread_pool.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;
using weft::net::Address;
using weft::net::resolve;

namespace {

const bool kUring = (weft::test::require_io_uring(), true);

bool all_loopback(const std::vector<Address>& v) {
  return !v.empty() && std::all_of(v.begin(), v.end(), [](const Address& a) { return a.is_loopback(); });
}

bool has_duplicates(const std::vector<Address>& v) {
  for (std::size_t i = 0; i < v.size(); ++i)
    for (std::size_t j = i + 1; j < v.size(); ++j)
      if (v[i] == v[j]) return true;
  return false;
}

// The slow resolver: blocks until the test releases it (bounded at 30 s so a
// failing test cannot hang the binary), then answers like getaddrinfo.
std::atomic<bool> g_release{false};
std::atomic<bool> g_entered{false};
std::atomic<bool> g_finished{false};

int slow_lookup(const char*, const char* service, const addrinfo* hints, addrinfo** res) {
  g_entered.store(true);
  for (int i = 0; i < 30000 && !g_release.load(); ++i) std::this_thread::sleep_for(1ms);
  const int rc = ::getaddrinfo("localhost", service, hints, res);
  g_finished.store(true);
  return rc;
}

void spin_until(const std::atomic<bool>& flag) {
  for (int i = 0; i < 30000 && !flag.load(); ++i) std::this_thread::sleep_for(1ms);  // bounded: 30 s
  REQUIRE(flag.load());
}

}  // namespace

TEST_CASE("localhost resolves on the pool to loopback addresses, in order and without duplicates") {
  weft::Runtime rt;
  const auto before = rt.pool().stats().submitted;
  const auto addrs = rt.block_on([] { return resolve("localhost", "8080"); });
  CHECK(rt.pool().stats().submitted == before + 1);
  REQUIRE(all_loopback(addrs));
  CHECK_FALSE(has_duplicates(addrs));
  for (const auto& a : addrs) {
    INFO(a.to_string());
    CHECK(a.port() == 8080);
    CHECK((a.host() == "127.0.0.1" || a.host() == "::1"));
  }
  // socktype 0 makes getaddrinfo repeat each address per socket type: still no duplicates.
  const auto any = rt.block_on([] { return resolve("localhost", "", 5s, {.socktype = 0}); });
  REQUIRE(all_loopback(any));
  CHECK_FALSE(has_duplicates(any));
  CHECK(any.front().port() == 0);
  // A timeout too large for nanoseconds is clamped, not overflowed into the past.
  CHECK(all_loopback(rt.block_on([] { return resolve("localhost", "1", std::chrono::milliseconds::max()); })));
  const auto v4 = rt.block_on([] { return resolve("localhost", "http", 5s, {.family = AF_INET}); });
  REQUIRE_FALSE(v4.empty());
  for (const auto& a : v4) CHECK(a.family() == Address::Family::ipv4);
  CHECK(v4.front().port() == 80);
}

TEST_CASE("an invalid name fails with getaddrinfo's code and message, naming host and service") {
  weft::Runtime rt;
  rt.block_on([] {
    try {
      (void)resolve("no-such-host.invalid", "80");
      FAIL("resolved an .invalid name");
    } catch (const std::system_error& e) {
      const std::string msg = e.what();
      INFO(msg);
      if (e.code().category() == weft::net::resolve_category()) {
        const std::string gai = gai_strerror(e.code().value());
        CHECK_FALSE(gai.empty());
        CHECK(msg.find(gai) != std::string::npos);
        CHECK(e.code().message() == gai);
      } else {
        CHECK(e.code().category() == std::generic_category());  // EAI_SYSTEM carries an errno
      }
      CHECK(msg.find("no-such-host.invalid") != std::string::npos);
      CHECK(msg.find("\"80\"") != std::string::npos);
    }
  });
}

TEST_CASE("bad input is refused before any lookup") {
  weft::Runtime rt;
  rt.block_on([] {
    CHECK_THROWS_WITH(resolve("localhost", "65536"), Catch::Contains("out of range") && Catch::Contains("65536"));
    CHECK_THROWS_AS(resolve("", "80"), std::invalid_argument);
    CHECK_THROWS_AS(resolve(std::string("local\0host", 10), "80"), std::invalid_argument);
    CHECK_THROWS_AS(resolve("localhost", "80", 5s, {.family = AF_UNIX}), std::invalid_argument);
    // An unknown service name is getaddrinfo's error, with its message.
    CHECK_THROWS_AS(resolve("localhost", "no-such-service-weft"), std::system_error);
    CHECK_THROWS_AS(resolve("127.0.0.1", "no-such-service-weft"), std::system_error);
  });
}

TEST_CASE("a numeric host resolves without going to the pool") {
  weft::Runtime rt;
  auto& pool = rt.pool();
  const auto before = pool.stats().submitted;
  rt.block_on([] {
    CHECK(resolve("127.0.0.1", "80") == std::vector<Address>{Address::ipv4_loopback(80)});
    CHECK(resolve("::1", "0443") == std::vector<Address>{Address::ipv6_loopback(443)});
    CHECK(resolve("[::1]", "443") == std::vector<Address>{Address::ipv6_loopback(443)});
    CHECK(resolve("fe80::1%1", "9").front().scope_id() == 1);
    CHECK(resolve("127.0.0.1", "http").front().port() == 80);
    CHECK_THROWS_AS(resolve("::1", "80", 5s, {.family = AF_INET}), std::system_error);
  });
  CHECK(pool.stats().submitted == before);
}

TEST_CASE("a lookup that outlives its deadline times out the fiber and its late result is freed") {
  weft::Runtime rt;
  g_release = false;
  g_entered = false;
  g_finished = false;
  const auto done_before = rt.pool().stats().completed;
  rt.block_on([] {
    try {
      (void)resolve("slow.invalid", "80", 50ms, {.detail_lookup = &slow_lookup});
      FAIL("the slow lookup did not time out");
    } catch (const std::system_error& e) {
      CHECK(e.code() == std::errc::timed_out);
      CHECK(std::string(e.what()).find("slow.invalid") != std::string::npos);
    }
  });
  spin_until(g_entered);
  CHECK_FALSE(g_finished.load());  // the pool thread is still inside the lookup
  // The process keeps going: the runtime serves other lookups meanwhile.
  CHECK(rt.block_on([] { return resolve("127.0.0.1", "1"); }).size() == 1);
  // Let the late lookup finish: its result lands in offload's state and is freed there.
  g_release = true;
  spin_until(g_finished);
  for (int i = 0; i < 30000 && rt.pool().stats().completed == done_before; ++i) std::this_thread::sleep_for(1ms);
  CHECK(rt.pool().stats().completed == done_before + 1);
  // And a normal lookup still works on the same pool afterwards.
  CHECK(all_loopback(rt.block_on([] { return resolve("localhost", "1"); })));
}

TEST_CASE("resolve takes a net Timeout: kNoTimeout waits for the lookup, zero times a name out at once") {
  weft::Runtime rt;
  g_release = false;
  g_entered = false;
  g_finished = false;
  rt.block_on([] {
    // Zero: a name times out without waiting; a numeric host still answers.
    try {
      (void)resolve("slow.invalid", "80", weft::net::Timeout(0s), {.detail_lookup = &slow_lookup});
      FAIL("a lookup with a zero timeout did not time out");
    } catch (const std::system_error& e) {
      CHECK(e.code() == std::errc::timed_out);
    }
    CHECK(resolve("127.0.0.1", "80", weft::net::Timeout(0s)) == std::vector<Address>{Address::ipv4_loopback(80)});
  });
  g_release = true;  // the lookup the zero timeout left behind ends
  spin_until(g_finished);
  g_release = false;
  g_entered = false;
  g_finished = false;
  rt.block_on([] {
    // kNoTimeout: the fiber waits for the lookup however long it takes; here until
    // a helper fiber has seen it start and released it.
    auto releaser = weft::spawn([] {
      while (!g_entered.load()) weft::sleep_for(1ms);
      g_release = true;
    });
    CHECK(all_loopback(resolve("slow.invalid", "80", weft::net::kNoTimeout, {.detail_lookup = &slow_lookup})));
    releaser.join();
  });
  CHECK(g_finished.load());
}

TEST_CASE("many fibers time out on slow lookups at once without disturbing the runtime") {
  weft::Runtime rt;
  g_release = false;
  g_entered = false;
  const int n = static_cast<int>(weft::test::scaled(20));
  std::atomic<int> timed_out{0};
  rt.block_on([&] {
    std::vector<weft::JoinHandle<void>> kids;
    for (int i = 0; i < n; ++i)
      kids.push_back(weft::spawn([&] {
        try {
          (void)resolve("slow.invalid", "80", 20ms, {.detail_lookup = &slow_lookup});
        } catch (const std::system_error& e) {
          if (e.code() == std::errc::timed_out) timed_out.fetch_add(1);
        }
      }));
    for (auto& k : kids) k.join();
  });
  CHECK(timed_out.load() == n);
  g_release = true;  // the queued and running lookups finish; the pool drains at shutdown
}

TEST_CASE("a fiber cancelled during a slow lookup unwinds with FiberCancelled") {
  g_release = false;
  g_entered = false;
  g_finished = false;
  std::atomic<bool> cancelled{false};
  {
    weft::Runtime rt;
    auto h = rt.spawn([&] {
      try {
        (void)resolve("slow.invalid", "80", 60s, {.detail_lookup = &slow_lookup});
      } catch (const weft::FiberCancelled&) {
        cancelled = true;
        g_release = true;  // let the pool finish so shutdown can join it
        throw;
      }
    });
    spin_until(g_entered);
    rt.shutdown();  // cancels the parked fiber, then drains and joins the pool
    CHECK_THROWS_AS(h.join(), weft::FiberCancelled);
  }
  CHECK(cancelled.load());
  CHECK(g_finished.load());  // the late lookup ran to its end before the pool was joined
}

TEST_CASE("host:port text is split and resolved, with clear errors on bad input") {
  using weft::net::split_host_port;
  CHECK(split_host_port("example.com:443").host == "example.com");
  CHECK(split_host_port("example.com:443").service == "443");
  CHECK(split_host_port("1.2.3.4:http").service == "http");
  CHECK(split_host_port("[::1]:80").host == "::1");
  CHECK(split_host_port("[fe80::1%lo]:80").host == "fe80::1%lo");
  CHECK_THROWS_WITH(split_host_port("example.com"), Catch::Contains("missing") && Catch::Contains("example.com"));
  CHECK_THROWS_WITH(split_host_port("::1:80"), Catch::Contains("needs brackets"));
  CHECK_THROWS_WITH(split_host_port("[::1:80"), Catch::Contains("unbalanced"));
  CHECK_THROWS_WITH(split_host_port("::1]:80"), Catch::Contains("unbalanced"));
  CHECK_THROWS_AS(split_host_port(""), std::invalid_argument);
  CHECK_THROWS_AS(split_host_port(":80"), std::invalid_argument);
  CHECK_THROWS_AS(split_host_port("host:"), std::invalid_argument);
  CHECK_THROWS_AS(split_host_port("[::1]"), std::invalid_argument);
  CHECK_THROWS_AS(split_host_port("[::1]x"), std::invalid_argument);

  weft::Runtime rt;
  rt.block_on([] {
    CHECK(weft::net::resolve_host_port("[::1]:7") == std::vector<Address>{Address::ipv6_loopback(7)});
    CHECK(all_loopback(weft::net::resolve_host_port("localhost:7")));
  });
}

TEST_CASE("resolve from a plain thread runs inline") {
  const auto addrs = resolve("localhost", "22");
  REQUIRE(all_loopback(addrs));
  CHECK(addrs.front().port() == 22);
  CHECK(resolve("127.0.0.1", "22").front() == Address::ipv4_loopback(22));
  CHECK_THROWS_AS(resolve("no-such-host.invalid", "80"), std::system_error);
  // No fiber to park: the hook runs on this thread, so it finishes (no timeout).
  g_release = true;
  g_finished = false;
  CHECK(all_loopback(resolve("slow.invalid", "1", 1ms, {.detail_lookup = &slow_lookup})));
  CHECK(g_finished.load());
}
