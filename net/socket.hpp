// weft/net/socket.hpp — the fd owner under TcpStream, TcpListener and UdpSocket:
// which worker owns it, which fibers are inside an op on it, and the close protocol.
//
// Invariants (states, owners, which thread touches what):
//  - States: empty (no fd) -> open -> closing (a close() under way: an fd, no new
//    op admitted) -> closed (fd released). Never back.
//  - One worker owns a socket at a time. Creating it (open/adopt) gives it to the
//    calling fiber's worker. Moving a Socket that has no op pending releases it
//    (owner = none), and the next op claims it for the worker of the fiber that
//    runs it: so a stream accepted on one worker can be moved into a fiber placed
//    on another (Config::placement) and used there. While owned, only fibers of the
//    owner may run ops on it; any other caller gets CrossRuntimeError before
//    anything is touched (a plain thread, a fiber of another worker or of another
//    Runtime). The hand-over between workers rides on whatever carried the moved
//    object there (a spawn, a Channel: both synchronise), so the state below is
//    touched by one thread at a time and needs no atomics (a close from another
//    thread reads only what does not change while the socket is owned: the owner,
//    its link, the fd).
//  - `pending` counts fibers inside an op on this socket (an IoOp in the worker's
//    engine, or an accept back-off sleep). A fiber resumes from an op only once it
//    has ended (io_uring: after its last CQE; the worker's rule), then leaves the
//    count; every exit leaves it, a throw included (an op refused for want of an
//    SQE or memory never holds a close up).
//  - close() (also the destructor and move-assignment) from a fiber of the owner
//    (incident 002), with or without ops pending: its first step marks the socket
//    closing, so from then on every new op (and a claim by a move's next user)
//    fails at once with operation_canceled ("being closed"), and none can slip in
//    while close() parks below: nor the retry of an op whose readiness poll
//    (-EAGAIN) was pending, which throws the close's error instead. With ops
//    pending it runs one cancel by fd (io_uring: ASYNC_CANCEL with CANCEL_FD |
//    CANCEL_ALL) and waits for it, so the cancel is issued before the fd number
//    can be closed and reused, then parks until `pending` is 0. Then it removes
//    the registered-file slot (waiting for the removal), has the engine forget
//    the fd (forget_fd), and only then close(2)s the fd. So no op ever names a
//    closed fd, every buffer handed to the kernel stays valid until the op has
//    ended, and no file table keeps the file open. The cancelled fibers see
//    std::errc::operation_canceled. Another fiber calling close() meanwhile parks
//    until the fd is closed.
//  - When the cancel cannot be had (no fd cancel before 5.19, the kernel refused it,
//    or no op slot or SQE could be had: bad_alloc, a ring error), close() does not
//    throw: shutdown(2) ends the pending ops instead (they see operation_canceled
//    too) and it waits for them the same way. When the slot removal fails (logged),
//    shutdown(2) ends the connection before close(2).
//  - close() from anywhere else (a plain thread, a fiber of another worker or
//    runtime, the scheduler context: a Timer callback) hands the close to the
//    owner's worker (net/close_handoff.cpp): a fiber there runs the protocol above
//    and frees the state. A plain thread blocks and a fiber parks until it is done;
//    the scheduler context lets it run on. While the owner's runtime shuts down
//    (it takes no new fiber) the socket is marked closing and shut down at once,
//    so its pending ops end with operation_canceled as with any close, and its fd
//    is closed as the worker exits (a warning is logged); once the owner's thread
//    has exited, nothing can be pending and the caller closes it itself. A
//    released socket (moved while idle) closes where it is.
//  - A buffered receive (read_buffer(); net/read_buffer.cpp) in flight is not in
//    `pending` but is waited for like an op: the close protocol cancels it with the
//    ops and waits for its last CQE; while it is armed the socket stays with its
//    worker.
//  - Registered files (runtime/uring/fixed_files.hpp): the first op on a worker
//    installs the socket in that worker's file table and later ops there name the
//    slot. A claim by another worker removes it from the old table; the close
//    removes it before close(2) (waited for on the slot's worker; from elsewhere the
//    worker applies it at its next tick).
//  - Each socket has an id, unique in the process and never reused, that every op
//    on it carries (IoOp::owner). A close on the owner's thread (or, for a released
//    socket, its last owner's) has that engine forget the fd before close(2); a
//    close elsewhere cannot, and an engine that kept state for the fd tells the
//    fd's next holder by its id.
//  - The state lives in a heap block the Socket points to, so moving a Socket while
//    other fibers are inside ops on it is safe: they hold the block, not the Socket.
//    Destroying a socket that another fiber still *uses* (calls into) is the caller's
//    bug, as with any object.
#pragma once

#include <cstdint>
#include <string>

#include <weft/net/address.hpp>
#include <weft/net/error.hpp>
#include <weft/net/read_buffer.hpp>

namespace weft::detail {
struct IoOp;
}

namespace weft::net {

/// Which direction shutdown() ends (SHUT_RD, SHUT_WR, SHUT_RDWR).
enum class Shutdown : int { read = 0, write = 1, both = 2 };

namespace detail {
struct SocketCore;
}

class Socket {
 public:
  Socket() noexcept = default;
  ~Socket();
  /// Moving an idle socket releases it from its worker (see the invariants).
  Socket(Socket&& o) noexcept : core_(o.core_) {
    o.core_ = nullptr;
    release_if_idle();
  }
  Socket& operator=(Socket&& o) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  /// socket(domain, type | SOCK_CLOEXEC, protocol), owned by the calling fiber's
  /// worker. `op` names the public call for errors.
  static Socket open(const char* op, int domain, int type, int protocol = 0);
  /// Takes ownership of `fd` (an accepted socket): owned by the calling fiber's
  /// worker. Closes `fd` if it throws.
  static Socket adopt(const char* op, int fd);

  [[nodiscard]] bool is_open() const noexcept;
  /// The fd, or -1 when empty or closed.
  [[nodiscard]] int fd() const noexcept;
  /// Refuses new ops, cancels pending ones, waits for their completions, closes the
  /// fd; from elsewhere than a fiber of the owner, hands that to the owner's worker
  /// (see the invariants). Idempotent; never throws.
  void close() noexcept;

  /// Runs `io` (runtime/io_op.hpp: its kind, fd, buffers, flags, deadline) for the
  /// calling fiber on the worker's engine and returns its non-negative result; the
  /// socket fills in its registered-file slot (`fixed`) and its id (`owner`).
  /// `poll_events`: what to wait for when the kernel answers -EAGAIN (then the op
  /// is retried). Throws per the error model (error.hpp).
  int run(const char* op, const weft::detail::IoOp& io, short poll_events);

  /// Buffered reads (read_buffer.cpp): the next chunk of the stream from the
  /// socket's multishot receive, armed by the first call; empty at end of stream.
  /// Without a provided-buffer ring (or none free) one plain receive fills a heap
  /// buffer of the ring's buffer size instead. Throws like run().
  ReadBuffer read_buffer(const char* op, Deadline deadline);
  /// When earlier read_buffer() calls left a multishot receive armed or bytes queued,
  /// serves a read_some() from that queue (copying up to `len` bytes, waiting for
  /// the next chunk if needed), sets `*got` and returns true. False: read with a
  /// plain receive (nothing queued, nothing armed), so the byte order holds.
  bool read_queued(const char* op, void* buf, std::size_t len, Deadline deadline, std::size_t* got);
  /// True while read_queued() would serve reads (a receive armed, bytes or the
  /// stream's end queued).
  [[nodiscard]] bool read_queued_pending() const noexcept;
  /// True when bytes are queued now (read_queued() would not wait).
  [[nodiscard]] bool read_queued_ready() const noexcept;

  /// For synchronous calls (setsockopt, shutdown, getsockname): checks the caller
  /// like an op does and returns the fd.
  int checked_fd(const char* op) const;
  /// Parks the calling fiber for `d` (or until `deadline`), counted as an op on
  /// this socket so close() waits for it; throws closed / timed_out / FiberCancelled
  /// like an op. The accept back-off under EMFILE.
  void backoff(const char* op, Timeout d, Deadline deadline);

  /// The address shown in error messages: " (fd 7, <role> <address>)".
  void set_known_address(const char* role, const Address& a);
  [[nodiscard]] const Address& known_address() const;
  /// " (fd 7, peer 1.2.3.4:5)": the socket part of what().
  [[nodiscard]] std::string subject() const;
  /// Throws the error for `res` on this socket (error.hpp).
  [[noreturn]] void fail(int res, const char* op) const;

  void set_option(const char* op, int level, int name, int value);
  [[nodiscard]] int get_option(const char* op, int level, int name) const;
  /// getsockname / getpeername.
  [[nodiscard]] Address local_address(const char* op) const;
  [[nodiscard]] Address remote_address(const char* op) const;
  void shutdown(const char* op, Shutdown how);

 private:
  explicit Socket(detail::SocketCore* c) noexcept : core_(c) {}
  void release_if_idle() noexcept;
  detail::SocketCore* core_ = nullptr;
};

}  // namespace weft::net
