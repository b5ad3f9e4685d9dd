// tests/explore/sockets_io.cpp — the readers and writers of the sockets scenario:
// each op is chosen at random among the calls that move the same bytes
// (read_some, read_exact, read_buffer, recv, readv; write_all, send, writev), with
// a long timeout or, for reads, a short one that may expire. See sockets.hpp.
//
// Invariants checked here, at every op:
//  - the bytes received are the next bytes of the stream (none lost, duplicated
//    or reordered), also across reads that timed out (a read that expires takes
//    nothing from the stream);
//  - an op that starts after close() of its socket returned fails with
//    bad_file_descriptor (or FiberCancelled), never returns data;
//  - an op pending when another fiber's close() returned did not wait for its
//    timeout (close() ends pending ops before it returns, so such an op cannot
//    end by its deadline);
//  - every error is one the headers document (classify()).
#include <sys/uio.h>

#include <algorithm>
#include <vector>

#include "sockets.hpp"

namespace weft::explore::sockets {

using weft::net::Timeout;

namespace {
std::vector<const Direction*> g_streams;  // every stream of the run (set before any fiber reads)

// Where else the bytes at `p` come from: "stream X at offset Y", or "".
std::string whose(const char* p, std::size_t n) {
  n = std::min<std::size_t>(n, 16);
  for (const Direction* d : g_streams)
    for (std::uint64_t off = 0; off < 256 * 1024; ++off) {
      std::size_t i = 0;
      while (i < n && static_cast<std::uint8_t>(p[i]) == byte_at(d->id, off + i)) ++i;
      if (i == n)
        return std::string(d->what) + " stream " + std::to_string(d->id) + " at offset " + std::to_string(off);
    }
  return "";
}
}  // namespace

void register_stream(const Direction* d) {
  g_streams.push_back(d);
}

void take(Direction& d, const char* p, std::size_t n, const char* op) {
  for (std::size_t i = 0; i < n; ++i) {
    if (static_cast<std::uint8_t>(p[i]) == byte_at(d.id, d.got + i)) continue;
    const std::string from = whose(p + i, n - i);
    FAIL_NOW(std::string(op) + ": " + d.what + " stream " + std::to_string(d.id) + ": byte " +
             std::to_string(d.got + i) + " is wrong (byte " + std::to_string(i) + " of a chunk of " +
             std::to_string(n) + "); the bytes there are " +
             (from.empty() ? std::string("none of the run's streams") : "those of " + from));
  }
  d.got += n;
}

void rethrow_tagged(const Run& run, const char* op) {
  const Outcome o = classify(run, std::current_exception(), op);
  std::string what;
  try {
    throw;
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  throw Tagged(weft::this_fiber::id(), o, std::string(op) + ": " + what);
}

namespace {

// The promptness and after-close rules for one op that threw `o` (see the top).
void check_closed_op(const CloseMark* mark, bool began_after_close, Clock::time_point t0, Timeout to, Outcome o,
                     const char* op) {
  if (!mark) return;
  if (began_after_close)
    EXPECT(o == Outcome::bad_fd || o == Outcome::fiber_cancelled,
           std::string(op) + " begun after close() returned ended with " + name_of(o) + ", not bad_file_descriptor");
  if (o != Outcome::timed_out || !mark->returned) return;
  const Clock::time_point deadline = t0 + to;
  if (*mark->returned < deadline && Clock::now() >= deadline)
    FAIL_NOW(std::string(op) + " waited its whole timeout (" +
             std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(to).count()) +
             " ms) and ended timed_out, although close() of its socket by another fiber returned " +
             std::to_string(std::chrono::duration<double, std::milli>(*mark->returned - t0).count()) +
             " ms after the op began: the close did not end it");
}

// After a write failed: the stream has a hole, so end it here, as an application
// gives up a connection whose write failed. Without it, the peer's reader waits
// for bytes nobody will send: when both writers of a connection fail (an injected
// deadline, say), each end waits for its own reader, and both readers wait out
// their whole timeout (kLong: a 20 s run for nothing). A socket already closing
// or closed has nothing to end.
void end_write_side(weft::net::TcpStream& s) {
  try {
    s.shutdown(weft::net::Shutdown::write);
  } catch (const weft::FiberCancelled&) {
    throw;
  } catch (...) {
  }
}

Timeout short_timeout(Rng& r) {
  return std::chrono::microseconds(r.between(0, 2000));
}

}  // namespace

void read_stream(const Run& run, weft::net::TcpStream& s, Direction& d, Rng& r, const ReadStyle& st) {
  std::vector<char> buf(16384);
  weft::net::ReadBuffer held;  // a lease sometimes kept across the next read
  const Timeout long_to = st.close ? Timeout(kCloseWait) : Timeout(kLong);
  while (d.got < st.limit) {
    std::size_t len = r.between(1, 8192);
    len = static_cast<std::size_t>(std::min<std::uint64_t>(len, st.limit - d.got));
    const unsigned pick = static_cast<unsigned>(r.next() % 10);
    const bool short_to = r.next() % 6 == 0;
    const Timeout to = short_to ? short_timeout(r) : long_to;
    const bool after_close = st.close && st.close->returned;
    const Clock::time_point t0 = Clock::now();
    const char* op = "read_some";
    try {
      std::size_t n = 0;
      if (pick < 3) {
        n = s.read_some(buf.data(), len, to);
        take(d, buf.data(), n, op);
      } else if (pick < 5 && st.exact && !short_to && d.total - d.got >= len) {
        op = "read_exact";
        s.read_exact(buf.data(), len, to);
        n = len;
        take(d, buf.data(), n, op);
      } else if (pick < 7 && st.buffered && st.limit == ~0ull) {
        op = "read_buffer";
        weft::net::ReadBuffer b = s.read_buffer(to);
        n = b.size();
        take(d, b.data(), n, op);
        if (r.next() % 3 == 0)
          held = std::move(b);
        else
          held.reset();
      } else if (pick < 9) {
        op = "recv";
        n = s.recv(buf.data(), len, 0, to);
        take(d, buf.data(), n, op);
      } else {
        op = "readv";
        const std::size_t half = len / 2;
        const iovec iov[2] = {{buf.data(), half}, {buf.data() + half, len - half}};
        n = s.readv(iov, to);
        take(d, buf.data(), n, op);
      }
      EXPECT(!after_close,
             std::string(op) + " returned " + std::to_string(n) + " bytes on a socket whose close() had returned");
      if (n == 0) {
        d.eof = true;
        return;
      }
    } catch (const Tagged&) {
      throw;
    } catch (...) {
      const Outcome o = classify(run, std::current_exception(), op);
      check_closed_op(st.close, after_close, t0, to, o, op);
      // A read that expired took nothing: the stream goes on (not read_exact,
      // which may have taken part of what it asked for).
      if (o == Outcome::timed_out && short_to) continue;
      d.read_failed = true;
      d.read_outcome = o;
      rethrow_tagged(run, op);
    }
    if (r.next() % 8 == 0) jitter(r, 2);
  }
}

void write_stream(const Run& run, weft::net::TcpStream& s, Direction& d, Rng& r, std::uint64_t limit, bool finish,
                  const CloseMark* close) {
  std::vector<char> buf(16384);
  const Timeout to = close ? Timeout(kCloseWait) : Timeout(kLong);
  const std::uint64_t end = std::min(limit, d.total);
  while (d.sent < end) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(end - d.sent, r.between(1, 12000)));
    for (std::size_t i = 0; i < n; ++i) buf[i] = static_cast<char>(byte_at(d.id, d.sent + i));
    const unsigned pick = static_cast<unsigned>(r.next() % 8);
    const bool after_close = close && close->returned;
    const Clock::time_point t0 = Clock::now();
    const char* op = "write_all";
    try {
      std::size_t k = n;
      if (pick < 3) {
        s.write_all(buf.data(), n, to);
      } else if (pick < 4) {
        s.write_all(buf.data(), n);  // no timeout at all
      } else if (pick < 6) {
        op = "send";
        k = s.send(buf.data(), n, 0, to);
      } else {
        op = "writev";
        const std::size_t a = n / 3, b = n / 3;
        const iovec iov[3] = {{buf.data(), a}, {buf.data() + a, b}, {buf.data() + a + b, n - a - b}};
        k = s.writev(iov, to);
      }
      EXPECT(!after_close, std::string(op) + " succeeded on a socket whose close() had returned");
      EXPECT(k > 0 && k <= n, std::string(op) + " returned " + std::to_string(k) + " of " + std::to_string(n));
      d.sent += k;
    } catch (const Tagged&) {
      throw;
    } catch (...) {
      const Outcome o = classify(run, std::current_exception(), op);
      check_closed_op(close, after_close, t0, to, o, op);
      d.write_failed = true;
      d.lost_chunk = n;
      d.write_outcome = o;
      end_write_side(s);
      rethrow_tagged(run, op);
    }
    if (r.next() % 8 == 0) jitter(r, 2);
  }
  if (!finish || d.sent != d.total) return;
  try {
    s.shutdown(weft::net::Shutdown::write);
    d.write_done = true;
  } catch (...) {
    d.write_outcome = classify(run, std::current_exception(), "shutdown");
    d.write_failed = true;
    rethrow_tagged(run, "shutdown");
  }
}

// --------------------------------------------------------------- close races ----

void close_race(weft::Runtime& rt, unsigned worker, const Run& run, Rng& r, const char* op,
                const std::function<std::size_t(Timeout)>& wait_op, const std::function<void()>& close_op) {
  CloseMark mark;  // before the JoinSet: its fibers use it
  JoinSet hs(run);
  const unsigned n = static_cast<unsigned>(r.between(1, 3));
  for (unsigned i = 0; i <= n; ++i) {
    const std::uint64_t seed = r.next();
    if (i == n) {  // the closer
      hs.add(rt.spawn_on(worker,
                         [&, seed] {
                           Rng fr(seed);
                           jitter(fr, 4);
                           close_op();
                           mark.returned = Clock::now();
                         },
                         {.name = "race closer"}));
      break;
    }
    hs.add(rt.spawn_on(worker,
                       [&, seed] {
                         Rng fr(seed);
                         jitter(fr, 4);
                         const bool after = mark.returned.has_value();
                         const Clock::time_point t0 = Clock::now();
                         try {
                           const std::size_t n = wait_op(kCloseWait);
                           FAIL_NOW(std::string(op) + " returned " + std::to_string(n) +
                                    " on a socket nobody sends to, while another fiber closed it (the op began " +
                                    (after ? "after" : "before") + " close() returned)");
                         } catch (const Tagged&) {
                           throw;
                         } catch (...) {
                           const Outcome o = classify(run, std::current_exception(), op);
                           check_closed_op(&mark, after, t0, kCloseWait, o, op);
                           // A reset here can only be the explorer's, injected into the op that the
                           // close then raced with (the peer never closes).
                           EXPECT((o != Outcome::reset || run.op_faults()) && o != Outcome::unexpected_eof,
                                  std::string(op) + " on a socket closed by another fiber ended with " + name_of(o));
                         }
                       },
                       {.name = "race waiter"}));
  }
  if (auto f = hs.join())
    EXPECT(f->outcome == Outcome::fiber_cancelled || f->outcome == Outcome::shut_down,
           std::string(op) + " close race: " + f->text);
}

}  // namespace weft::explore::sockets
