// weft/runtime/epoll/engine.hpp — the epoll engine of one worker: an IoOp runs as
// its non-blocking syscall, and its fiber parks on the fd's readiness only when
// the syscall would block. Deadlines are the worker's timers; cancellation is the
// fiber's cancel hook; cross-thread wakes arrive on the worker's eventfd.
//
// Invariants:
//  - Only the worker's thread touches the engine (run() in fiber context, poll()
//    and forget_fd() in either), so no state here is atomic.
//  - An fd is registered once, edge-triggered for both directions, the first time
//    an op of its owner (IoOp::owner) runs here, and stays registered across ops;
//    a new owner of the same fd number registers it anew. Every registration has
//    a generation in its epoll data, so an event of an older one is dropped.
//  - Each fd keeps one "may be ready" bit per direction: set by registration and
//    by every event, cleared only by an EAGAIN the fiber saw itself, or by a short
//    stream read before any hang-up was seen (new data makes a new edge; a peer's
//    FIN harvested with the data does not, and the next read must still see it).
//    Events are harvested only in the scheduler's tick, never between a fiber's
//    syscall and its park, so an edge is never lost. A receive on a socket whose
//    reading side is shut down ends with 0, as a blocking one would, though a
//    datagram socket's non-blocking receive says EAGAIN there.
//  - A parked waiter is woken exactly once, by whoever unlinks it first: an event
//    of its fd, its deadline timer, its fiber's cancel hook, or a cancel_fd.
#pragma once

#include <cstdint>
#include <vector>

#include <weft/runtime/fiber/timer_node.hpp>
#include <weft/runtime/io_op.hpp>
#include <weft/runtime/stats.hpp>
#include <weft/runtime/uring/explorer.hpp>

namespace weft::detail {

class FiberBase;
class Worker;

class EpollEngine {
 public:
  explicit EpollEngine(Worker& w) : w_(w) {}
  ~EpollEngine();
  EpollEngine(const EpollEngine&) = delete;
  EpollEngine& operator=(const EpollEngine&) = delete;

  /// Creates the epoll set and registers the worker's eventfd. Throws StartupError.
  void init(int wake_fd);
  /// Fiber context: runs `op` for the running fiber (runtime/io_op.hpp).
  OpEnd run(const IoOp& op, OpKind hint);
  /// Scheduler context: waits up to `timeout_ns` (<0: until an event; 0: only
  /// looks) and wakes the fibers whose fds became ready.
  void poll(std::int64_t timeout_ns);
  /// Fibers parked on an fd here (the stop protocol's "ops in flight").
  [[nodiscard]] std::uint32_t waiting() const noexcept { return waiting_; }
  /// Before close(2): drops the fd's registration if `owner` still holds it.
  void forget_fd(int fd, std::uint64_t owner) noexcept;

  Counter waits;   ///< epoll_wait calls
  Counter events;  ///< events harvested (the wake's included)
  Counter stale;   ///< events of a registration since dropped
  Counter wakes;   ///< cross-thread wakes received

 private:
  struct Waiter;
  struct FdState {
    std::uint64_t owner = 0;
    std::uint32_t gen = 0;
    bool registered = false;
    bool readable = true;  ///< "may be ready" bits (see the invariants)
    bool writable = true;
    bool hung_up = false;  ///< an event said RDHUP/HUP/ERR: reads end at once from now on
    Waiter* readers = nullptr;
    Waiter* writers = nullptr;
  };
  enum class End : std::uint8_t { none, ready, timed_out, cancelled };

  /// The fd's state, registered for `owner` (0 when it could not be: the op then
  /// runs as a plain syscall); an errno when epoll refused the fd.
  FdState* attach(int fd, std::uint64_t owner, int* err);
  /// Parks the running fiber until `fd` may be ready for `write`, its deadline
  /// passes or it is cancelled.
  End wait(int fd, bool write, Deadline deadline);
  void wake_list(Waiter*& head, End why) noexcept;
  static void unlink(Waiter* n) noexcept;
  void finish(Waiter* n, End why) noexcept;
  int cancel_fd(int fd) noexcept;
  void drain_wake() noexcept;

  Worker& w_;
  int epfd_ = -1;
  int wake_fd_ = -1;
  std::vector<FdState> fds_;
  std::uint32_t waiting_ = 0;
};

}  // namespace weft::detail
