// A ring under pressure keeps every op's meaning: with the SQ full, ops queue and
// are issued in order and nothing spins.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "../helpers/watchdog.hpp"

using namespace std::chrono_literals;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

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
    for (int m = 0; m < msgs; ++m) n += static_cast<long>(("msg-" + std::to_string(i) + "-" + std::to_string(m)).size());
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
