// tests/explore/sockets.hpp — the pieces of the sockets scenario shared by its
// files: one direction of a connection (its bytes are a function of the stream id
// and the offset, so any loss, duplicate or reordering shows), the readers and
// writers that move them with randomly chosen calls, and the per-socket record of
// when close() returned.
//
// Invariants:
//  - A Direction is touched by the fibers of the worker owning the stream at each
//    end: the writer's end alone touches sent/write_*, the reader's end alone
//    got/eof/read_*; the main fiber reads both after joining them (the join
//    orders it).
//  - Every byte a reader gets is checked at once against byte_at(id, offset):
//    what a reader got is always a prefix of what was sent.
//  - An op that ends in an error ends its loop with a Tagged exception of the
//    calling fiber; a loop that ends normally saw the end of the stream (reader)
//    or sent everything (writer).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/net/udp.hpp>

#include "explore.hpp"

namespace weft::explore::sockets {

using namespace std::chrono_literals;

/// A timeout that never expires in a passing run.
inline constexpr auto kLong = std::chrono::seconds(20);
/// The timeout of a read that a close() by another fiber must end first.
inline constexpr auto kCloseWait = std::chrono::seconds(2);

inline std::uint8_t byte_at(std::uint64_t stream, std::uint64_t off) {
  return static_cast<std::uint8_t>(mix(stream, off >> 3) >> ((off & 7) * 8));
}

struct Direction {
  std::uint64_t id = 0;
  const char* what = "";         ///< the connection's mode and direction, for messages
  std::uint64_t total = 0;       ///< bytes the writer means to send
  std::uint64_t sent = 0;        ///< bytes the kernel took (a prefix of the stream)
  bool write_failed = false;     ///< a write failed: an unknown part of its chunk may have gone
  std::uint64_t lost_chunk = 0;  ///< the size of that chunk (bytes past `sent` a reader may get)
  bool write_done = false;       ///< all `total` bytes sent and the write side shut down
  std::uint64_t got = 0;         ///< bytes received and verified
  bool eof = false;
  bool read_failed = false;
  Outcome read_outcome = Outcome::ok, write_outcome = Outcome::ok;
};

/// When close() of a socket returned (fibers of its worker only).
struct CloseMark {
  std::optional<Clock::time_point> returned;
};

/// Makes `d` known to the failure messages of take() (before any fiber reads).
void register_stream(const Direction* d);
/// Checks the bytes at `p` as the next `n` bytes of `d`.
void take(Direction& d, const char* p, std::size_t n, const char* op);

/// How a reader may read.
struct ReadStyle {
  bool buffered = true;              ///< read_buffer() allowed
  bool exact = true;                 ///< read_exact() allowed (not where a cancellation may cut it)
  std::uint64_t limit = ~0ull;       ///< stop once `got` reaches it (a phase boundary)
  const CloseMark* close = nullptr;  ///< the reads a close() must end promptly
};

/// Reads `d` from `s` until end of stream (returns), `style.limit`, or an error
/// (throws Tagged with the fiber's id). Records got/eof/read_failed.
void read_stream(const Run& run, weft::net::TcpStream& s, Direction& d, Rng& r, const ReadStyle& style);
/// Writes `d` up to `limit` bytes; then, when all is sent and `finish`, shuts down
/// the write side. Throws Tagged on an error (recorded in write_failed), after
/// shutting the write side down (the peer's reader then sees the end). `close`:
/// the writes a close() must end promptly.
void write_stream(const Run& run, weft::net::TcpStream& s, Direction& d, Rng& r, std::uint64_t limit, bool finish,
                  const CloseMark* close = nullptr);

/// A connection to `lst` (connected and accepted in the calling fiber), retrying
/// what the explorer failed: {client end, server end}.
std::pair<weft::net::TcpStream, weft::net::TcpStream> make_pair(const Run& run, weft::net::TcpListener& lst);

/// Throws Tagged(this fiber, classify(current exception)) — call in a handler.
[[noreturn]] void rethrow_tagged(const Run& run, const char* op);

/// On worker `worker`, 1-3 fibers start `wait_op(timeout)` (a read or an accept on
/// a socket nobody sends to; it returns the bytes read) at random points while another runs `close_op`: each
/// must end with the close (operation_canceled, or bad_file_descriptor when it
/// began after close() returned), never by its timeout. Joins them all.
void close_race(weft::Runtime& rt, unsigned worker, const Run& run, Rng& r, const char* op,
                const std::function<std::size_t(weft::net::Timeout)>& wait_op, const std::function<void()>& close_op);

/// Datagrams between two UDP sockets (on random workers): sequence-numbered, with
/// a window; every datagram sent arrives once, intact and in order. Then a UDP
/// socket closed while fibers wait in recv_from. `interrupted`: a shutdown may end
/// it anywhere (only the per-op rules are checked).
/// `f()` (a call that sets up a socket), again while it fails with an injected
/// ENOMEM: setting up is not what a scenario explores.
template <class F>
auto retry_no_memory(const Run& run, const char* what, F f) {
  for (int tries = 0;; ++tries) {
    EXPECT(tries < 1000, std::string(what) + ": still out of memory after 1000 tries");
    try {
      return f();
    } catch (...) {
      if (classify(run, std::current_exception(), what) != Outcome::no_memory) throw;
    }
  }
}

void udp_exchange(weft::Runtime& rt, const Run& run, Rng& r, unsigned workers, bool interrupted);

}  // namespace weft::explore::sockets
