// weft/net/tcp_listener.hpp — a listening stream socket (TCP, or a Unix-domain path)
// whose accept() parks only the calling fiber.
//
// Invariants (states, owners, which thread touches what):
//  - Evented-only and owned by one worker at a time, like every socket
//    (net/socket.hpp). A stream it accepts is idle when returned: the worker of the
//    fiber that first uses it owns it (so it may be moved into a fiber elsewhere).
//  - bind()/listen() are ops of the worker's engine where it runs them (io_uring:
//    IORING_OP_BIND/LISTEN, 6.11+, probed per ring) and the syscalls otherwise: the
//    same result either way. Tests force the syscalls
//    through detail::TestAccess (runtime/test_access.hpp, not installed).
//  - accept() out of file descriptors (EMFILE/ENFILE): the listener logs once per
//    episode, sleeps with a growing back-off (1 ms doubling to 100 ms), retries, and
//    logs again when it accepts: it keeps serving, never spins and never throws for
//    it. A close() during the back-off waits for the sleep (at most 100 ms).
//    ECONNABORTED (a connection reset before it was accepted) is skipped.
//  - close() (or the destructor) while fibers wait in accept() cancels them; they
//    throw std::errc::operation_canceled (net/error.hpp).
#pragma once

#include <weft/net/address.hpp>
#include <weft/net/error.hpp>
#include <weft/net/socket.hpp>
#include <weft/net/tcp_stream.hpp>

namespace weft::detail {
struct TestAccess;
}

namespace weft::net {

struct ListenOptions {
  int backlog = 1024;       ///< listen(2)'s backlog (the kernel caps it at somaxconn)
  bool reuse_addr = true;   ///< SO_REUSEADDR: rebind while old connections linger in TIME_WAIT
  bool reuse_port = false;  ///< SO_REUSEPORT: several listeners (e.g. one per worker) share the port
};

class TcpListener {
 public:
  TcpListener() noexcept = default;
  TcpListener(TcpListener&&) noexcept = default;
  TcpListener& operator=(TcpListener&&) noexcept = default;

  /// Binds and listens on `addr` (port 0: the kernel picks one, see local_address()).
  static TcpListener bind(const Address& addr, ListenOptions opts = {});

  /// The next connection; its peer is in TcpStream::peer_address().
  TcpStream accept(Timeout timeout = kNoTimeout);

  /// The bound address, with the real port when bind() was given port 0.
  [[nodiscard]] const Address& local_address() const noexcept { return sock_.known_address(); }
  /// Cancels waiting accepts, waits for them, closes the fd. Idempotent; no throw.
  void close() noexcept { sock_.close(); }
  [[nodiscard]] bool is_open() const noexcept { return sock_.is_open(); }
  [[nodiscard]] int native_handle() const noexcept { return sock_.fd(); }

 private:
  friend struct weft::detail::TestAccess;
  /// ring_ops false: the bind(2)/listen(2) syscalls even where the ring has
  /// IORING_OP_BIND/LISTEN (the path of kernels before 6.11, for the tests).
  static TcpListener bind_listen(const Address& addr, const ListenOptions& opts, bool ring_ops);

  Socket sock_;
  bool out_of_fds_ = false;  ///< inside an EMFILE/ENFILE episode (logged once)
};

}  // namespace weft::net
