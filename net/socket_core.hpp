// weft/net/socket_core.hpp — the state block behind a Socket (internal to net/):
// shared by socket.cpp (ops, the close protocol), read_buffer.cpp (multishot
// receive) and close_handoff.cpp (a close from elsewhere, handed to the worker).
// The invariants are in socket.hpp; the receive queue's in read_buffer.cpp, a
// close from elsewhere's in close_handoff.cpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <weft/net/address.hpp>
#include <weft/net/error.hpp>
#include <weft/runtime/worker_link.hpp>

namespace weft::detail {
class FiberBase;
class Worker;
}  // namespace weft::detail

namespace weft::net::detail {

struct ReadBufferState;

/// A fiber parked in close() while another fiber closes the socket; the node lives
/// on that fiber's stack while it is parked.
struct CloserNode {
  weft::detail::FiberBase* fiber;
  CloserNode* next;
};

// Touched only by the owner worker's thread (see socket.hpp), hence no atomics but
// for `closing` and `slot` (each says why). An Orphan: a close handed to a worker
// that cannot take it leaves the core to the worker's exit (close_handoff.cpp).
struct SocketCore final : weft::detail::Orphan {
  int fd = -1;
  /// Unique in the process and never reused (new_core): the IoOp::owner of every
  /// op on the socket, by which an engine that keeps state per fd across ops
  /// (epoll's registration) tells this socket from a later one given the same fd.
  std::uint64_t id = 0;
  weft::detail::Worker* owner = nullptr;
  std::uint32_t pending = 0;  ///< fibers inside an op (or a back-off) on this socket
  /// No new op admitted, and an op that ends reports the socket closed. Set by
  /// close_owned() (cleared once the fd is closed: the fd closes when pending hits
  /// 0) and, for good, where a hand-over's fiber was refused or cancelled before it
  /// ran (close_handoff.cpp), which then shuts the fd down from its own thread.
  /// Atomic for that one write from a thread that may not be the owner's: a
  /// release store made before its shutdown(2), and every load is acquire, so an
  /// op that the shutdown ended (its completion comes after the shutdown) sees it.
  /// The owner's own stores are relaxed: the loads that must see them are on its
  /// thread.
  std::atomic<bool> closing{false};
  weft::detail::FiberBase* drainer = nullptr;  ///< the closer, parked until pending hits 0
  CloserNode* closers = nullptr;               ///< other fibers' close() calls, woken at close(2)
  const char* role = nullptr;                  ///< "peer" / "local": what `known_address` is, for messages
  Address known_address;
  /// The slot in `slot_owner`'s registered-file table (runtime/uring/fixed_files.hpp),
  /// or -1. Installed by the first op on a worker; ops of that worker name it
  /// instead of the fd. A move that releases the socket keeps it (the next op is
  /// most often on the same worker); a claim by another worker, or the close,
  /// removes it. Atomic (relaxed) only because the slot owner's shutdown resets it
  /// under the table's mutex; then `slot_owner` is never looked at again.
  std::atomic<int> slot{-1};
  weft::detail::Worker* slot_owner = nullptr;
  bool fixed_refused = false;   ///< an op named the slot and got -EBADF: use the fd from now on
  bool stream = true;           ///< SOCK_STREAM (TCP, Unix stream); false for datagrams
  bool in_read_buffer = false;  ///< a fiber is inside read_buffer(), on either path (one at a time)
  /// The multishot receive and its queue (read_buffer.cpp); null until the first
  /// buffered read.
  ReadBufferState* read_buffer_state = nullptr;
  /// The owner worker's thread, as other threads may ask after it (close_handoff.cpp):
  /// set with `owner` (creation, claim), kept when a move releases the socket. The
  /// one way a thread that is not the owner learns whether the owner still runs.
  std::shared_ptr<weft::detail::WorkerLink> link;

  /// close_idle(this): at the worker's exit no op of it is in flight.
  void finish_orphan() noexcept override;
};

/// Counts the calling fiber in `c->pending` for its lifetime: every exit from an op
/// leaves the count, a throw included (so a close() never waits for an op that
/// never ran).
class OpCount {
 public:
  explicit OpCount(SocketCore* c) noexcept : c_(c) { ++c->pending; }
  ~OpCount();
  OpCount(const OpCount&) = delete;
  OpCount& operator=(const OpCount&) = delete;

 private:
  SocketCore* c_;
};

/// " (fd 7, peer 1.2.3.4:5)": the socket part of an error's what().
std::string subject_of(const SocketCore* c);
[[noreturn]] void throw_for(const SocketCore* c, Failure why, int res, const char* op);
/// The checks every op starts with: a fiber of the owner (a released socket is
/// claimed), not cancelled, open. Returns `c`.
SocketCore* enter_op(SocketCore* c, const char* op);
/// enter_op(), plus the socket's registered-file slot on this worker.
SocketCore* enter_ring_op(SocketCore* c, const char* op);
/// Leaves the op count; the last op out of a closing socket wakes the closer. Never
/// switches, so the caller may still read the core afterwards until it blocks.
void leave(SocketCore* c) noexcept;
/// Takes the socket out of its registered-file table (socket.cpp).
void remove_slot(SocketCore* c) noexcept;
/// The close protocol (socket.hpp), from a fiber of the owner `w`: returns once the
/// fd is closed, by this call or by the close() already under way that it waited
/// for. The core stays allocated.
void close_owned(SocketCore* c, weft::detail::Worker* w) noexcept;
/// Closes the fd of a core no op can be inside (released by a move, or its owner's
/// thread has exited) and frees the core. Any thread.
void close_idle(SocketCore* c) noexcept;
/// close() from where it cannot wait for the owner's ops (a plain thread, another
/// worker, the scheduler context): hands the close to the owner's worker, which
/// runs close_owned() in a fiber and frees the core; `wait`: block (a plain thread)
/// or park (a fiber) until it has. Where the owner's thread has exited, closes
/// here. The caller forgets `c` (close_handoff.cpp).
void close_elsewhere(SocketCore* c, bool wait) noexcept;
/// True while the receive queue ties the socket to its worker: a multishot receive
/// armed or bytes queued (read_buffer.cpp).
bool read_buffer_busy(const SocketCore* c) noexcept;
/// A multishot receive is in flight (armed, its last CQE not seen yet).
bool read_buffer_in_flight(const SocketCore* c) noexcept;
/// read_buffer_busy(), or the stream's end queued: reads are served from the queue.
bool read_buffer_serves_reads(const SocketCore* c) noexcept;
/// After the last op has left: gives queued buffers back and frees the queue.
void read_buffer_release(SocketCore* c) noexcept;

}  // namespace weft::net::detail
