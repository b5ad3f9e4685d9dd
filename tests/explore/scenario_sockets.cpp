// tests/explore/scenario_sockets.cpp — the sockets scenario: loopback TCP
// connections (and a UDP pair) on 1-2 workers, each end driven by fibers with
// random calls, in one of four modes:
//   clean       a reader and a writer per end; all bytes arrive, then the end;
//   move        half the bytes, then the idle stream moves to a fiber of another
//               worker for the rest;
//   cancel      the reader is cancelled (JoinHandle::cancel) at a random point
//               inside a read; a new reader goes on where it stopped;
//   close_race  a fiber closes one end while others are inside (or about to
//               enter) reads and writes on it; they must end with the close.
// Plus an idle stream and a listener closed while fibers start reads / accepts.
// Every fiber's error handlers park (a yield, a sleep, a close) before `throw;`
// and check that they rethrew their own exception.
// Invariants (besides the per-op ones of sockets_io.cpp): a connection that
// neither end broke delivers every byte exactly once, in order, then the end;
// once every socket is closed no registered-file slot is left; after the
// runtime is gone no fd is left.
#include <memory>
#include <vector>

#include "sockets.hpp"

namespace weft::explore::sockets {
namespace {

using weft::net::Address;
using weft::net::TcpListener;
using weft::net::TcpStream;

enum class Mode { clean, move, cancel, close_race };
const char* const kModeNames[] = {"clean", "move", "cancel", "close_race"};
const char* const kUpNames[] = {"clean client->server", "move client->server", "cancel client->server",
                                "close_race client->server"};
const char* const kDownNames[] = {"clean server->client", "move server->client", "cancel server->client",
                                  "close_race server->client"};

struct Conn {
  Mode mode = Mode::clean;
  Direction up, down;  // up: client -> server
  unsigned wc = 0, ws = 0;
  bool client_closes = false;  // close_race: which end closes
};

// Parks inside an error handler: nothing, a yield or a short sleep (not when
// cancelled: a sleep would throw FiberCancelled over the exception in hand).
void handler_park(Rng& r) {
  if (weft::this_fiber::cancelled()) return;
  switch (r.next() % 3) {
    case 0:
      break;
    case 1:
      weft::yield();
      break;
    default:
      weft::sleep_for(std::chrono::microseconds(r.between(0, 500)));
      break;
  }
}

// Runs `body` in a fiber's error discipline: an error becomes a Tagged of this
// fiber; the handler parks and runs `cleanup` (a close, which parks too), then
// `throw;` must rethrow this fiber's own Tagged.
template <class F, class C>
void guarded(const Run& run, Rng& r, const char* what, F&& body, C&& cleanup) {
  try {
    try {
      try {
        if (r.next() % 4 == 0) handler_probe(r);
        body();
      } catch (const Tagged&) {
        throw;
      } catch (...) {
        rethrow_tagged(run, what);
      }
    } catch (...) {
      handler_park(r);
      cleanup();
      throw;
    }
  } catch (const Tagged& t) {
    check_own(t, what);
    throw;
  }
}
template <class F>
void guarded(const Run& run, Rng& r, const char* what, F&& body) {
  guarded(run, r, what, std::forward<F>(body), [] {});
}

struct End {
  TcpStream* s;
  Direction* in;
  Direction* out;
};

// The fibers of one end for `mode`, on worker k; throws Tagged(this fiber) when
// one of them failed.
void run_end(weft::Runtime& rt, unsigned k, unsigned workers, const Run& run, Rng& r, End e, Mode mode, bool closer) {
  CloseMark mark;  // before the JoinSet: its fibers use it
  JoinSet hs(run);
  auto reader = [&](ReadStyle st, std::uint64_t seed) {
    return rt.spawn_on(k,
                       [&, st, seed] {
                         Rng fr(seed);
                         guarded(run, fr, "reader", [&] { read_stream(run, *e.s, *e.in, fr, st); });
                       },
                       {.name = "reader"});
  };
  auto writer = [&](std::uint64_t limit, bool finish, std::uint64_t seed) {
    return rt.spawn_on(k,
                       [&, limit, finish, seed] {
                         Rng fr(seed);
                         guarded(run, fr, "writer", [&] {
                           write_stream(run, *e.s, *e.out, fr, limit, finish,
                                        mode == Mode::close_race ? &mark : nullptr);
                         });
                       },
                       {.name = "writer"});
  };
  const std::uint64_t all = ~0ull;
  switch (mode) {
    case Mode::clean:
      hs.add(reader({}, r.next()));
      hs.add(writer(all, true, r.next()));
      break;
    case Mode::move: {
      // Half on this worker, with calls that leave the stream idle afterwards
      // (no buffered read: its receive would tie the stream here)...
      hs.add(reader({.buffered = false, .limit = e.in->total / 2}, r.next()));
      hs.add(writer(e.out->total / 2, false, r.next()));
      if (auto f = hs.join()) {
        // This end gives up: the rest of its incoming stream is never read (its
        // reader for after the move never starts), so that direction is broken.
        if (!e.in->eof && !e.in->read_failed) {
          e.in->read_failed = true;
          e.in->read_outcome = f->outcome;
        }
        throw Tagged(weft::this_fiber::id(), f->outcome, "before the move: " + f->text);
      }
      // ...then the rest from a fiber of the next worker, the stream moved there.
      const unsigned k2 = (k + 1) % workers;
      TcpStream moved = std::move(*e.s);
      const std::uint64_t s2 = r.next();
      auto h = rt.spawn_on(
          k2,
          [&, k2, s2, st = std::move(moved)]() mutable {
            Rng fr(s2);
            guarded(run, fr, "moved end", [&] {
              End e2{&st, e.in, e.out};
              JoinSet inner(run);
              inner.add(rt.spawn_on(k2,
                                    [&, s = fr.next()] {
                                      Rng g(s);
                                      guarded(run, g, "reader", [&] { read_stream(run, *e2.s, *e2.in, g, {}); });
                                    },
                                    {.name = "moved reader"}));
              inner.add(rt.spawn_on(k2,
                                    [&, s = fr.next()] {
                                      Rng g(s);
                                      guarded(run, g, "writer",
                                              [&] { write_stream(run, *e2.s, *e2.out, g, ~0ull, true); });
                                    },
                                    {.name = "moved writer"}));
              const auto f = inner.join();
              st.close();
              if (f) throw Tagged(weft::this_fiber::id(), f->outcome, "after the move: " + f->text);
            });
          },
          {.name = "moved end"});
      hs.add(std::move(h));
      break;
    }
    case Mode::cancel: {
      hs.add(writer(all, true, r.next()));
      JoinSet one(run);
      weft::JoinHandle<void>& first = one.add(reader({.exact = false}, r.next()));
      if (r.next() % 2)
        weft::sleep_for(std::chrono::microseconds(r.between(0, 3000)));
      else
        jitter(r, 6);
      first.cancel();
      if (auto f = one.join(); f && f->outcome != Outcome::fiber_cancelled)
        throw Tagged(weft::this_fiber::id(), f->outcome, "the reader to cancel: " + f->text);
      if (!e.in->eof) hs.add(reader({}, r.next()));
      break;
    }
    case Mode::close_race:
      if (!closer) {  // the peer: reads until the close reaches it; never ends its side
        hs.add(reader({}, r.next()));
        break;
      }
      hs.add(reader({.buffered = false, .close = &mark}, r.next()));
      hs.add(writer(all, false, r.next()));
      hs.add(rt.spawn_on(k,
                         [&, seed = r.next()] {  // a read begun at a random point near the close
                           Rng fr(seed);
                           jitter(fr, 4);
                           guarded(run, fr, "late reader", [&] {
                             read_stream(run, *e.s, *e.in, fr, {.buffered = false, .exact = false, .close = &mark});
                           });
                         },
                         {.name = "late reader"}));
      hs.add(rt.spawn_on(k,
                         [&, seed = r.next()] {
                           Rng fr(seed);
                           if (fr.next() % 2)
                             weft::sleep_for(std::chrono::microseconds(fr.between(0, 2000)));
                           else
                             jitter(fr, 6);
                           e.s->close();
                           mark.returned = Clock::now();
                           EXPECT(!e.s->is_open() && e.s->native_handle() == -1,
                                  "close() returned with the socket still open");
                         },
                         {.name = "closer"}));
      break;
  }
  if (auto f = hs.join()) throw Tagged(weft::this_fiber::id(), f->outcome, f->text);
}

}  // namespace

std::pair<TcpStream, TcpStream> make_pair(const Run& run, TcpListener& lst) {
  for (int tries = 0;; ++tries) {
    EXPECT(tries < 1000, "no connection in 1000 tries");
    TcpStream c;
    try {
      c = TcpStream::connect(lst.local_address(), kLong);
    } catch (...) {
      const Outcome o = classify(run, std::current_exception(), "TcpStream::connect");
      if (o == Outcome::fiber_cancelled) throw;
      EXPECT(o != Outcome::bad_fd && o != Outcome::unexpected_eof,
             std::string("connect to a live listener ended with ") + name_of(o));
      continue;
    }
    for (int t = 0;; ++t) {
      EXPECT(t < 1000, "no accept in 1000 tries");
      try {
        return {std::move(c), lst.accept(kLong)};
      } catch (...) {
        const Outcome o = classify(run, std::current_exception(), "TcpListener::accept");
        if (o == Outcome::fiber_cancelled) throw;
        EXPECT(o == Outcome::no_memory || o == Outcome::timed_out || o == Outcome::canceled,
               std::string("accept of a pending connection ended with ") + name_of(o));
      }
    }
  }
}

void sockets_main(weft::Runtime& rt, const Run& run, unsigned workers, bool interrupted) {
  Rng r = run.rng(1);
  TcpListener lst =
      retry_no_memory(run, "TcpListener::bind", [] { return TcpListener::bind(Address::parse("127.0.0.1:0")); });
  std::vector<std::unique_ptr<Conn>> conns;
  std::vector<TcpStream> idle_peers;
  JoinSet ends(run);
  const unsigned n = static_cast<unsigned>(r.between(2, 6));
  for (unsigned i = 0; i < n; ++i) {
    auto [c, s] = make_pair(run, lst);
    auto cn = std::make_unique<Conn>();
    cn->mode = static_cast<Mode>(r.next() % 4);
    if (cn->mode == Mode::move && workers < 2) cn->mode = Mode::clean;
    cn->up = {.id = mix(run.seed, 2 * i + 100), .total = r.between(0, 96 * 1024)};
    cn->down = {.id = mix(run.seed, 2 * i + 101), .total = r.between(0, 96 * 1024)};
    cn->client_closes = r.next() % 2;
    cn->up.what = kUpNames[static_cast<int>(cn->mode)];
    cn->down.what = kDownNames[static_cast<int>(cn->mode)];
    register_stream(&cn->up);
    register_stream(&cn->down);
    if (cn->mode == Mode::close_race) {
      // Several fibers read the closing end at once, so the order in which they
      // take its bytes is theirs: nothing is sent toward it (its reads wait for
      // the close), and the other direction is checked as usual.
      (cn->client_closes ? cn->down : cn->up).total = 0;
    }
    cn->wc = static_cast<unsigned>(r.next() % workers);
    cn->ws = static_cast<unsigned>(r.next() % workers);
    Conn* p = cn.get();
    conns.push_back(std::move(cn));
    for (const bool client : {true, false}) {
      const unsigned k = client ? p->wc : p->ws;
      const std::uint64_t seed = r.next();
      TcpStream st =
          client ? std::move(c) : std::move(s);  // NOLINT(bugprone-use-after-move): each moved once, c then s
      ends.add(rt.spawn_on(k,
                           [&rt, &run, p, k, workers, seed, client, st = std::move(st)]() mutable {
                             Rng fr(seed);
                             End e{&st, client ? &p->down : &p->up, client ? &p->up : &p->down};
                             try {
                               guarded(
                                   run, fr, kModeNames[static_cast<int>(p->mode)],
                                   [&] { run_end(rt, k, workers, run, fr, e, p->mode, p->client_closes == client); },
                                   [&] { st.close(); });
                             } catch (const Tagged&) {
                               // An end that broke: its Directions say how; checked at the end.
                             }
                             st.close();
                           },
                           {.name = client ? "client end" : "server end"}));
    }
  }
  // An idle stream and a listener closed while fibers start reads / accepts.
  {
    auto [c, s] = make_pair(run, lst);
    idle_peers.push_back(std::move(s));
    const unsigned k = static_cast<unsigned>(r.next() % workers);
    ends.add(rt.spawn_on(k,
                         [&rt, &run, k, seed = r.next(), st = std::move(c)]() mutable {
                           Rng fr(seed);
                           char b[64];
                           close_race(
                               rt, k, run, fr, "TcpStream::read_some",
                               [&](weft::net::Timeout t) { return st.read_some(b, sizeof b, t); }, [&] { st.close(); });
                         },
                         {.name = "stream close race"}));
    TcpListener l2 =
        retry_no_memory(run, "TcpListener::bind", [] { return TcpListener::bind(Address::parse("127.0.0.1:0")); });
    const unsigned k2 = static_cast<unsigned>(r.next() % workers);
    ends.add(rt.spawn_on(k2,
                         [&rt, &run, k2, seed = r.next(), l = std::move(l2)]() mutable {
                           Rng fr(seed);
                           close_race(
                               rt, k2, run, fr, "TcpListener::accept",
                               [&](weft::net::Timeout t) {
                                 (void)l.accept(t);
                                 return std::size_t{1};
                               },
                               [&] { l.close(); });
                         },
                         {.name = "listener close race"}));
  }
  udp_exchange(rt, run, r, workers, interrupted);
  phase("sockets: joining the ends");
  if (auto f = ends.join())
    EXPECT(interrupted && (f->outcome == Outcome::fiber_cancelled || f->outcome == Outcome::shut_down),
           "an end failed outside its handler: " + f->text);
  for (auto& s : idle_peers) s.close();
  lst.close();
  if (interrupted) return;
  phase("sockets: checking the streams");
  std::uint64_t bytes = 0;
  std::string modes;
  for (const auto& c : conns) {
    bytes += c->up.got + c->down.got;
    modes += std::string(" ") + kModeNames[static_cast<int>(c->mode)];
  }
  note(std::to_string(conns.size()) + " connections (" + modes.substr(1) + "), " + std::to_string(bytes) +
       " bytes checked");
  for (const auto& c : conns) {
    for (const Direction* d : {&c->up, &c->down}) {
      const std::string what = std::string(kModeNames[static_cast<int>(c->mode)]) + " stream " + std::to_string(d->id);
      EXPECT(d->got <= d->sent + d->lost_chunk, what + ": " + std::to_string(d->got) + " bytes received but " +
                                                    std::to_string(d->sent) + " sent (and " +
                                                    std::to_string(d->lost_chunk) + " in a failed write)");
      if (c->mode == Mode::close_race || d->write_failed || !d->write_done || d->read_failed) continue;
      EXPECT(d->eof && d->got == d->total, what + ": neither end broke it, yet " + std::to_string(d->got) + " of " +
                                               std::to_string(d->total) + " bytes arrived" +
                                               (d->eof ? " before the end" : " and no end"));
    }
  }
}

namespace {

void body(Run& run) {
  Rng r = run.rng(0);
  const unsigned workers = 1 + static_cast<unsigned>(r.next() % 2);
  allow_error_log("registered-file table failed");  // ENOMEM injected into a slot removal
  const int fds0 = count_fds();
  {
    weft::Runtime rt(run.config(workers));
    watch(&rt);
    phase("sockets: running");
    auto h = rt.spawn([&] { sockets_main(rt, run, workers, false); }, {.name = "sockets main"});
    join_load_fiber(h, run, false, "the sockets main fiber");
    note_stats(rt);
    phase("sockets: registered files");
    for (int round = 0; round < 2; ++round)  // a tick on every worker applies queued slot removals
      for (unsigned k = 0; k < workers; ++k)
        rt.spawn_on(k, [] { weft::sleep_for(std::chrono::milliseconds(1)); }).join();
    const weft::Stats st = rt.stats();
    if (error_logs_with("registered-file table failed") == 0)
      EXPECT(st.files_registered == 0, std::to_string(st.files_registered) +
                                           " registered-file slot(s) still installed after every socket was closed");
    EXPECT(st.unjoined_exceptions == 0, "an exception nobody joined");
    watch(nullptr);
    phase("sockets: runtime destructor");
  }
  const int fds1 = count_fds();
  EXPECT(fds1 == fds0, std::to_string(fds1 - fds0) + " fd(s) left open after the runtime was destroyed");
}

}  // namespace
}  // namespace weft::explore::sockets

namespace weft::explore {
std::unique_ptr<Load> make_sockets_load(weft::Runtime& rt, const Run& run, bool interrupted) {
  struct L final : Load {
    weft::Runtime& rt;
    const Run& run;
    bool interrupted;
    weft::JoinHandle<void> main;
    L(weft::Runtime& r, const Run& u, bool i) : rt(r), run(u), interrupted(i) {}
    void start() override {
      const unsigned workers = rt.workers();
      main =
          rt.spawn([this, workers] { sockets::sockets_main(rt, run, workers, interrupted); }, {.name = "sockets main"});
    }
    void finish() override { join_load_fiber(main, run, interrupted, "the sockets main fiber"); }
  };
  return std::make_unique<L>(rt, run, interrupted);
}

const Scenario kSockets{"sockets", "TCP streams and UDP pairs: random reads/writes, close races, cancels, moves",
                        &sockets::body};
}  // namespace weft::explore
