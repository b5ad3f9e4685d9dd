// net/tcp_listener.cpp — bind/listen (engine ops where the engine has them, else the
// syscalls) and accept with the EMFILE back-off. See tcp_listener.hpp.
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <stdexcept>

#include <weft/net/tcp_listener.hpp>
#include <weft/runtime/fiber/fiber.hpp>
#include <weft/runtime/io_op.hpp>
#include <weft/runtime/log.hpp>
#include <weft/runtime/uring/ops.hpp>

namespace weft::net {

using weft::detail::IoKind;
using weft::detail::IoOp;

namespace {

constexpr auto kFirstBackoff = std::chrono::milliseconds(1);
constexpr auto kMaxBackoff = std::chrono::milliseconds(100);

// Whether the calling worker's engine runs `k` (io_uring: BIND and LISTEN need 6.11).
bool engine_has(IoKind k) {
  weft::detail::Worker* w = weft::detail::t_state.worker;
  return w && weft::detail::engine_supports(w, k);
}

// ring_ops false: the syscalls even where the engine has the op (a test's choice).
void bind_socket(Socket& s, const Address& addr, bool ring_ops, const char* op) {
  const int fd = s.fd();
  if (ring_ops && engine_has(IoKind::bind)) {
    IoOp io = IoOp::on_fd(IoKind::bind, fd);
    io.buf = const_cast<sockaddr*>(addr.sockaddr_ptr());
    io.len = addr.size();
    s.run(op, io, 0);
  } else if (::bind(fd, addr.sockaddr_ptr(), addr.size()) != 0) {
    s.fail(-errno, op);
  }
}

void listen_socket(Socket& s, int backlog, bool ring_ops, const char* op) {
  const int fd = s.fd();
  if (ring_ops && engine_has(IoKind::listen)) {
    IoOp io = IoOp::on_fd(IoKind::listen, fd);
    io.len = static_cast<std::uint32_t>(backlog);
    s.run(op, io, 0);
  } else if (::listen(fd, backlog) != 0) {
    s.fail(-errno, op);
  }
}

}  // namespace

TcpListener TcpListener::bind(const Address& addr, ListenOptions opts) {
  return bind_listen(addr, opts, true);
}

TcpListener TcpListener::bind_listen(const Address& addr, const ListenOptions& opts, bool ring_ops) {
  static constexpr const char* kOp = "weft::net::TcpListener::bind";
  if (addr.family() == Address::Family::none)
    throw std::invalid_argument(std::string(kOp) + ": the address is empty (Family::none)");
  if (opts.backlog < 0) throw std::invalid_argument(std::string(kOp) + ": backlog must be >= 0");
  TcpListener l;
  l.sock_ = Socket::open(kOp, addr.domain(), SOCK_STREAM);
  l.sock_.set_known_address("local", addr);
  const bool inet = addr.family() != Address::Family::unix_path;
  if (inet && opts.reuse_addr) l.sock_.set_option(kOp, SOL_SOCKET, SO_REUSEADDR, 1);
  if (inet && opts.reuse_port) l.sock_.set_option(kOp, SOL_SOCKET, SO_REUSEPORT, 1);
  bind_socket(l.sock_, addr, ring_ops, kOp);
  listen_socket(l.sock_, opts.backlog, ring_ops, "weft::net::TcpListener::bind (listen)");
  // The real address (port 0 becomes the kernel's choice) is what errors name.
  if (inet) l.sock_.set_known_address("local", l.sock_.local_address(kOp));
  return l;
}

TcpStream TcpListener::accept(Timeout timeout) {
  static constexpr const char* kOp = "weft::net::TcpListener::accept";
  const Deadline deadline = Deadline::after(timeout);
  std::chrono::nanoseconds backoff = kFirstBackoff;
  for (;;) {
    Address peer;
    socklen_t len = Address::capacity();
    const int fd = sock_.fd();
    IoOp io = IoOp::transfer(IoKind::accept, fd, peer.storage(), 0, SOCK_CLOEXEC, deadline);
    io.addr_len = &len;
    int res;
    try {
      res = sock_.run(kOp, io, POLLIN);
    } catch (const std::system_error& e) {
      const auto c = e.code();
      if (c == std::errc::connection_aborted) continue;
      if (c != std::errc::too_many_files_open && c != std::errc::too_many_files_open_in_system) throw;
      if (!out_of_fds_) {
        out_of_fds_ = true;
        log::logger().warn("{}{}: out of file descriptors ({}); backing off (up to {} ms) and retrying", kOp,
                           sock_.subject(), c.message(), kMaxBackoff.count());
      }
      sock_.backoff(kOp, backoff, deadline);
      backoff = std::min<std::chrono::nanoseconds>(backoff * 2, kMaxBackoff);
      continue;
    }
    Socket s = Socket::adopt(kOp, res);
    if (out_of_fds_) {
      out_of_fds_ = false;
      log::logger().info("{}{}: accepting again", kOp, sock_.subject());
    }
    try {
      peer.set_size(len);
    } catch (const std::invalid_argument&) {
      peer = Address();  // an unnamed Unix peer: nothing to show
    }
    s.set_known_address("peer", peer);
    return TcpStream(std::move(s));
  }
}

}  // namespace weft::net
