// tests/net/net_test_support.hpp — what the net/ tests share: open-fd counting (leak
// checks), RLIMIT_NOFILE adjustment, a deterministic byte pattern, and a connected
// loopback pair made inside a fiber.
#pragma once

#include <dirent.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <utility>
#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>

namespace weft::test {

/// Open file descriptors of this process (entries of /proc/self/fd, less the one
/// the directory listing itself uses).
inline int open_fds() {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  while (readdir(d)) ++n;
  closedir(d);
  return n - 3;  // ".", ".." and the DIR's own fd
}

/// open_fds() without transient fds of other threads (a sanitizer runtime or the
/// runtime briefly opening a /proc file): the smallest of samples taken until two
/// in a row agree. A leaked fd stays in every sample, so it is still counted.
inline int stable_open_fds() {
  int best = open_fds(), prev = best;
  for (int i = 0; i < 50; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const int n = open_fds();
    best = std::min(best, n);
    if (n == prev) break;
    prev = n;
  }
  return best;
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
inline long raise_nofile_limit() {
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  r.rlim_cur = r.rlim_max;
  setrlimit(RLIMIT_NOFILE, &r);
  getrlimit(RLIMIT_NOFILE, &r);
  return static_cast<long>(r.rlim_cur);
}

/// Byte `i` of stream `seed`: a pattern that catches reordering, loss and duplication.
inline unsigned char pattern_byte(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t x = (seed * 0x9E3779B97F4A7C15ULL) ^ (i * 0xBF58476D1CE4E5B9ULL);
  x ^= x >> 31;
  return static_cast<unsigned char>(x ^ (x >> 17));
}

/// A small deterministic PRNG (xorshift64*), so a failing run can be replayed.
struct Rng {
  std::uint64_t s;
  explicit Rng(std::uint64_t seed) : s(seed ? seed : 1) {}
  std::uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 2685821657736338717ULL;
  }
  /// Uniform in [lo, hi].
  std::size_t between(std::size_t lo, std::size_t hi) { return lo + next() % (hi - lo + 1); }
};

/// A connected loopback pair (fiber only): {client side, server side}.
inline std::pair<net::TcpStream, net::TcpStream> tcp_pair(net::TcpListener& l) {
  net::TcpStream c = net::TcpStream::connect(l.local_address());
  net::TcpStream s = l.accept();
  return {std::move(c), std::move(s)};
}

}  // namespace weft::test
