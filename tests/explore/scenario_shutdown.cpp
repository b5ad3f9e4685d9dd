// tests/explore/scenario_shutdown.cpp — the shutdown scenario: the loads of the
// other scenarios (a random subset: sockets, sync, timers, offload, files) run on one
// runtime, which ends at a random moment: its destructor on the main thread, or
// shutdown() from one or two other threads first.
// Invariants:
//  - no crash and no hang (every fiber unwinds: its blocking call throws
//    FiberCancelled, or it ends by itself); concurrent shutdown() calls all
//    return;
//  - every op in flight ends with a documented outcome (the loads' own checks);
//  - nothing leaks: the fd count is back where it was, offload results are all
//    destroyed, and (asan build) LeakSanitizer finds nothing at exit;
//  - Timers, sync primitives and channels outlive the runtime and are destroyed
//    after it, idle.
//  - In half the runs a plain thread closes a TCP stream while a fiber of its
//    worker waits in read_some on it (its cancellation deferred, or not), at a
//    random moment of the shutdown: before it (the close is handed to the worker),
//    while the worker waits for its fibers (the runtime refuses the hand-over and
//    the thread shuts the socket down itself) or after. The read ends with the
//    close's operation_canceled, or FiberCancelled when the runtime's cancellation
//    came first, or an injected fault; never a result. (A stream: on epoll a
//    shutdown(2) does not end a datagram receive, whose non-blocking recv still
//    says EAGAIN, so it would end only at its deadline.)
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "sockets.hpp"

namespace weft::explore::shutdown {
namespace {

// The socket a plain thread closes under the shutdown (see the top).
class ThreadClose {
 public:
  ThreadClose(weft::Runtime& rt, const Run& run) : run_(run), r_(run.rng(9)) {
    defer_ = r_.next() % 2 == 0;
    const unsigned k = static_cast<unsigned>(r_.next() % rt.workers());
    rt.spawn_on(k, [this, &rt, k] { set_up(rt, k); }, {.name = "thread close setup"}).join();
  }
  // Closes the socket from a new thread after a random pause (any moment of the
  // shutdown that starts meanwhile); join() waits for it.
  void start_closer() {
    if (!sock_) return;
    const auto pause = std::chrono::microseconds(r_.between(0, 3000));
    closer_ = std::thread([this, pause] {
      std::this_thread::sleep_for(pause);
      sock_->close();
    });
  }
  // After the runtime is gone (its threads joined: the fiber's outcome is written).
  void finish() {
    if (closer_.joinable()) closer_.join();
    client_.reset();  // the runtime is gone: these close here
    listener_.reset();
    if (!sock_) return;
    note(std::string("a socket closed from a thread under the shutdown: the read ended with ") + name_of(outcome_) +
         (defer_ ? " (cancellation deferred)" : ""));
    EXPECT(!returned_, "TcpStream::read_some returned " + std::to_string(got_) +
                           " on a socket nobody sends to, closed by a plain thread while the runtime shut down");
    const bool injected = outcome_ == Outcome::timed_out || outcome_ == Outcome::no_buffers ||
                          outcome_ == Outcome::no_memory || outcome_ == Outcome::reset;
    EXPECT(outcome_ == Outcome::canceled || (outcome_ == Outcome::fiber_cancelled && !defer_) ||
               (injected && (run_.op_faults() || run_.enomem())),
           std::string("TcpStream::read_some on a socket closed by a plain thread while the runtime shut down ended "
                       "with ") +
               name_of(outcome_));
  }

 private:
  // In a fiber of worker `k`, the socket's: connects a pair, claims the server end
  // for this worker (a synchronous call: the thread's close reads the owner), and
  // starts the read on it (nobody sends to it).
  // Returns once the reader is inside its call (it has read the Socket, which the
  // thread then writes: the join of this fiber orders the two).
  void set_up(weft::Runtime& rt, unsigned k) {
    try {
      listener_.emplace(sockets::retry_no_memory(run_, "TcpListener::bind", [] {
        return weft::net::TcpListener::bind(weft::net::Address::parse("127.0.0.1:0"));
      }));
      auto [c, s] = sockets::make_pair(run_, *listener_);
      client_.emplace(std::move(c));
      sock_.emplace(std::move(s));  // a move releases it: the next call claims it
      sock_->set_nodelay(true);
      bool started = false;
      rt.spawn_on(k,
                  [this, &started] {
                    std::optional<weft::this_fiber::DeferCancellation> defer;
                    if (defer_) defer.emplace();
                    char b[64];
                    started = true;  // nothing switches until the call has read the Socket
                    try {
                      got_ = sock_->read_some(b, sizeof b, sockets::kLong);
                      returned_ = true;
                    } catch (...) {
                      outcome_ = classify(run_, std::current_exception(), "TcpStream::read_some");
                    }
                  },
                  {.name = "thread close reader", .launch = weft::Launch::dispatch})
          .detach();
      while (!started) weft::yield();
    } catch (...) {
      // An injected ENOMEM in the setup: this run does without the piece.
      if (classify(run_, std::current_exception(), "thread close setup") != Outcome::no_memory) throw;
      sock_.reset();
    }
  }

  const Run& run_;
  Rng r_;
  bool defer_ = false;
  std::optional<weft::net::TcpListener> listener_;
  std::optional<weft::net::TcpStream> client_, sock_;
  std::thread closer_;
  // Written by the reader on the worker, read after the runtime's threads ended.
  bool returned_ = false;
  std::size_t got_ = 0;
  Outcome outcome_ = Outcome::ok;
};

void body(Run& run) {
  Rng r = run.rng(0);
  const unsigned workers = 1 + static_cast<unsigned>(r.next() % 2);
  allow_error_log("registered-file table failed");  // ENOMEM injected into a slot removal
  const int fds0 = count_fds();
  auto rt = std::make_unique<weft::Runtime>(run.config(workers));
  watch(rt.get());
  std::vector<std::unique_ptr<Load>> loads;
  std::string names;
  using Make = std::unique_ptr<Load> (*)(weft::Runtime&, const Run&, bool);
  const std::pair<const char*, Make> kinds[] = {{"sockets", &make_sockets_load},
                                                {"sync", &make_sync_load},
                                                {"timers", &make_timers_load},
                                                {"offload", &make_offload_load},
                                                {"files", &make_files_load}};
  for (const auto& [name, make] : kinds) {
    if (r.next() % 4 == 0) continue;
    loads.push_back(make(*rt, run, true));
    names += std::string(" ") + name;
  }
  if (loads.empty()) loads.push_back(make_sync_load(*rt, run, true));
  note("loads:" + names);
  phase("shutdown: starting the loads");
  for (auto& l : loads) l->start();
  std::optional<ThreadClose> thread_close;
  if (run.rng(8).next() % 2 == 0) thread_close.emplace(*rt, run);
  std::this_thread::sleep_for(std::chrono::microseconds(r.between(0, 30000)));
  phase("shutdown: ending the runtime");
  const unsigned how = static_cast<unsigned>(r.next() % 3);
  if (thread_close) thread_close->start_closer();
  std::vector<std::thread> closers;
  for (unsigned i = 0; i < how; ++i)  // 0: the destructor alone; 1-2 threads call shutdown() first
    closers.emplace_back([&rt] { rt->shutdown(); });
  for (auto& t : closers) t.join();
  note(how ? std::to_string(how) + " thread(s) called shutdown()" : std::string("the destructor alone"));
  note_stats(*rt);
  watch(nullptr);
  rt.reset();
  // A fiber the shutdown gave up on never ends: joining it (below) would hang.
  if (const std::size_t n = error_logs_with("abandoned"))
    FAIL_NOW("the shutdown abandoned " + std::to_string(n) + " fiber(s) that were still to end, e.g. \"" +
             first_error_log_with("abandoned") + "\" (loads:" + names + ")");
  phase("shutdown: finishing the loads");
  if (thread_close) thread_close->finish();
  thread_close.reset();
  for (auto& l : loads) l->finish();
  loads.clear();
  const int fds1 = count_fds();
  EXPECT(fds1 == fds0, std::to_string(fds1 - fds0) + " fd(s) left open after the runtime (loads:" + names + ")");
}

}  // namespace
}  // namespace weft::explore::shutdown

namespace weft::explore {
const Scenario kShutdown{"shutdown", "the runtime ended at a random moment under every other scenario's load",
                         &shutdown::body};
}
