// tests/net/net_test_support.hpp — what the net/ tests share: open-fd counting (leak
// checks), RLIMIT_NOFILE adjustment, a deterministic byte pattern, a loopback
// listener, a connected loopback pair made inside a fiber (alone, or with a
// runtime and a fiber around it), and an echo loop. The PRNG (Rng) comes from
// helpers/test_support.hpp.
#pragma once

#include <dirent.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <system_error>
#include <thread>
#include <utility>

#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/runtime/runtime.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

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

/// The error carries exactly the code `c` (std::errc, the generic category).
inline bool has_code(const std::system_error& e, std::errc c) {
  return e.code() == std::make_error_code(c);
}

/// Byte `i` of stream `seed`: a pattern that catches reordering, loss and duplication.
inline unsigned char pattern_byte(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t x = (seed * 0x9E3779B97F4A7C15ULL) ^ (i * 0xBF58476D1CE4E5B9ULL);
  x ^= x >> 31;
  return static_cast<unsigned char>(x ^ (x >> 17));
}

/// A listener on 127.0.0.1, port chosen by the kernel (fiber only).
inline net::TcpListener loopback_listener(net::ListenOptions opts = {}) {
  return net::TcpListener::bind(net::Address::ipv4_loopback(0), opts);
}

/// A loopback address nobody listens on: a listener's, closed at once (fiber only).
inline net::Address closed_loopback_port() {
  return loopback_listener().local_address();
}

/// A connected loopback pair (fiber only): {client side, server side}.
inline std::pair<net::TcpStream, net::TcpStream> tcp_pair(net::TcpListener& l) {
  net::TcpStream c = net::TcpStream::connect(l.local_address());
  net::TcpStream s = l.accept();
  return {std::move(c), std::move(s)};
}

/// A loopback listener and one connection through it (members destroyed server,
/// client, listener: the order of locals declared listener, client, server).
struct LoopbackConnection {
  net::TcpListener listener;
  net::TcpStream client;
  net::TcpStream server;
};

/// loopback_listener() plus tcp_pair() on it (fiber only).
inline LoopbackConnection loopback_connection() {
  net::TcpListener l = loopback_listener();
  auto pr = tcp_pair(l);
  return {std::move(l), std::move(pr.first), std::move(pr.second)};
}

/// Runs fn(listener, client, server) in a fiber of `rt` (block_on) on a fresh
/// loopback_connection(), which lives until fn returns; returns fn's result.
template <class Fn>
auto on_loopback_connection(Runtime& rt, Fn&& fn) {
  return rt.block_on([&] {
    LoopbackConnection conn = loopback_connection();
    return fn(conn.listener, conn.client, conn.server);
  });
}

/// The same on a default Runtime of its own, destroyed when fn has returned.
template <class Fn>
auto on_loopback_connection(Fn&& fn) {
  Runtime rt;
  return on_loopback_connection(rt, std::forward<Fn>(fn));
}

/// Echoes what `s` reads back to it until end of stream (fiber only).
inline void echo_until_eof(net::TcpStream& s) {
  char buf[4096];
  for (;;) {
    const std::size_t n = s.read_some(buf, sizeof buf);
    if (n == 0) return;
    s.write_all(buf, n);
  }
}

/// Closes `s` in one of the ways incident 002's tests vary (0..3): close() from
/// this fiber (the owner), the destructor, a second closer racing the first, or
/// close() after a yield, so ops started just before reach the kernel first.
inline void close_variant(std::unique_ptr<net::TcpStream>& s, unsigned variant) {
  switch (variant) {
    case 0:
      s->close();
      break;
    case 1:
      s.reset();
      break;
    case 2: {
      auto other_closer = weft::spawn([st = s.get()] { st->close(); }, {.launch = weft::Launch::dispatch});
      s->close();
      other_closer.join();
      break;
    }
    default:
      weft::yield();
      s->close();
  }
}

/// What a reader or writer saw when a close raced its op: the only acceptable
/// outcomes are kCanceled and kClosedBefore (incident 002's tests).
enum Outcome { kNone, kCanceled, kClosedBefore, kOther };

inline Outcome classify(const std::system_error& e) {
  if (e.code() == std::errc::operation_canceled) return kCanceled;
  if (e.code() == std::errc::bad_file_descriptor) return kClosedBefore;
  std::fprintf(stderr, "unexpected error: %s\n", e.what());
  return kOther;
}

}  // namespace weft::test
