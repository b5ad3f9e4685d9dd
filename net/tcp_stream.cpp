// net/tcp_stream.cpp — connect, reads and writes of a stream socket as IoOps run by
// the worker's engine. Each op's arguments (buffers, iovecs, msghdr, sockaddr) live
// in the calling frame, which the fiber does not leave before the op has ended
// (socket.hpp, runtime/io_op.hpp).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <stdexcept>
#include <vector>

#include <weft/net/resolve.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/runtime/fiber/fiber.hpp>
#include <weft/runtime/fiber/sanitizer.hpp>
#include <weft/runtime/io_op.hpp>

#include "weft_build_config.hpp"

#if WEFT_VALGRIND
#include <valgrind/memcheck.h>
#endif

namespace weft::net {

using weft::detail::IoKind;
using weft::detail::IoOp;

namespace {

// A CQE result is an int: one op moves at most this much.
constexpr std::size_t kMaxOpBytes = std::size_t{1} << 30;

unsigned clamp_len(std::size_t len) {
  return static_cast<unsigned>(std::min(len, kMaxOpBytes));
}

// Buffers go to the kernel, which ASan cannot watch: refuse poisoned memory at
// submit instead of letting the kernel scribble over it unseen.
inline void check_buffer([[maybe_unused]] const void* buf, [[maybe_unused]] std::size_t len) {
#if WEFT_ASAN
  if (len > 0 && __asan_region_is_poisoned(const_cast<void*>(buf), len) != nullptr)
    throw std::invalid_argument("weft::net: a buffer handed to the kernel is poisoned (freed or out of bounds)");
#endif
}

// Valgrind cannot see the kernel fill a buffer.
inline void mark_filled([[maybe_unused]] void* buf, [[maybe_unused]] int n) {
#if WEFT_VALGRIND
  if (n > 0) VALGRIND_MAKE_MEM_DEFINED(buf, n);
#endif
}

// A receive with IoOp::poll_first (io_uring: IORING_RECVSEND_POLL_FIRST, 5.19)
// arms the poll before trying the recv. Asked after a short read, when the socket
// was just drained and the next recv would otherwise fail once with -EAGAIN
// inside the kernel before arming the poll (the same "short read = drained" rule
// an edge-triggered epoll loop uses). A write clears the mark: in
// request/response traffic the peer's next message usually arrives while our
// reply is in flight, and the recv that tries first then finds it without any
// poll (measured on the echo server: arming the poll every time cost it about
// 10% more server CPU per request). The engine drops the hint where the kernel
// lacks the flag.
IoOp recv_op(int fd, void* buf, unsigned n, int flags, Deadline deadline, bool drained) {
  IoOp io = IoOp::transfer(IoKind::recv, fd, buf, n, flags, deadline);
  io.poll_first = drained;
  return io;
}

void require_stream_address(const Address& a, const char* op) {
  switch (a.family()) {
    case Address::Family::ipv4:
    case Address::Family::ipv6:
    case Address::Family::unix_path:
      return;
    case Address::Family::none:
      break;
  }
  throw std::invalid_argument(std::string(op) + ": the address is empty (Family::none)");
}

}  // namespace

// ---------------------------------------------------------------- connect ----

TcpStream TcpStream::connect(const Address& to, Timeout timeout) {
  return connect_by(to, Deadline::after(timeout));
}

TcpStream TcpStream::connect_by(const Address& to, Deadline deadline) {
  static constexpr const char* kOp = "weft::net::TcpStream::connect";
  require_stream_address(to, kOp);
  Socket s = Socket::open(kOp, to.domain(), SOCK_STREAM);
  s.set_known_address("peer", to);
  const int fd = s.fd();
  IoOp conn = IoOp::on_fd(IoKind::connect, fd);
  conn.buf = const_cast<sockaddr*>(to.sockaddr_ptr());
  conn.len = to.size();
  conn.deadline = deadline;
  try {
    s.run(kOp, conn, 0);
  } catch (const std::system_error& e) {
    // run() retries a connect that ended in EINTR, but an interrupted connect
    // goes on in the kernel (POSIX): on this fresh socket EISCONN then means it
    // succeeded, EALREADY that it is still under way (wait for it, then ask).
    const bool done = e.code() == std::errc::already_connected;
    if (!done && e.code() != std::errc::connection_already_in_progress) throw;
    if (!done) {
      IoOp poll_out = IoOp::on_fd(IoKind::poll, fd);
      poll_out.flags = POLLOUT;
      poll_out.deadline = deadline;
      s.run(kOp, poll_out, 0);
      int so_error = 0;
      socklen_t len = sizeof so_error;
      if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) so_error = errno;
      if (so_error != 0) detail::throw_net_error(detail::Failure::errno_result, -so_error, kOp, s.subject());
    }
  }
  return TcpStream(std::move(s));
}

TcpStream TcpStream::connect(std::string_view host, std::string_view service, Timeout timeout) {
  static constexpr const char* kOp = "weft::net::TcpStream::connect";
  weft::detail::require_fiber(kOp);  // before any lookup: refused from a plain thread
  const Deadline deadline = Deadline::after(timeout);
  // Within the call's deadline (at least 1 ms, so a spent one still asks), or
  // resolve's own default without one.
  const Timeout lookup = deadline.is_none()
                             ? Timeout(std::chrono::seconds(5))
                             : std::max(Timeout(deadline.remaining()), Timeout(std::chrono::milliseconds(1)));
  const std::vector<Address> addrs = resolve(host, service, lookup);
  const std::string target = std::string(host) + ":" + std::string(service);
  std::error_code last_code = std::make_error_code(std::errc::host_unreachable);
  std::string last_what = "no address";
  for (const Address& a : addrs) {
    try {
      return connect_by(a, deadline);
    } catch (const std::system_error& e) {
      last_code = e.code();
      last_what = e.what();
      if (e.code() == std::errc::timed_out) break;  // the whole call's time is used up
    }
  }
  throw std::system_error(last_code, std::string(kOp) + " to " + target + " (" + std::to_string(addrs.size()) +
                                         " address(es); last attempt: " + last_what + ")");
}

// ------------------------------------------------------------------ reads ----

std::size_t TcpStream::recv(void* buf, std::size_t len, int flags, Timeout timeout) {
  static constexpr const char* kOp = "weft::net::TcpStream::recv";
  if (len == 0) {
    sock_.checked_fd(kOp);
    return 0;
  }
  check_buffer(buf, len);
  const Deadline deadline = Deadline::after(timeout);
  if (flags == 0) {
    if (std::size_t got = 0; sock_.read_queued(kOp, buf, len, deadline, &got)) return got;
  } else if (sock_.read_queued_pending()) {
    throw std::invalid_argument(std::string(kOp) + sock_.subject() +
                                ": flags are not available while read_buffer() has bytes queued or armed");
  }
  const int fd = sock_.fd();
  const unsigned n = clamp_len(len);
  const bool drained = drained_ && !(flags & (MSG_DONTWAIT | MSG_PEEK));
  // MSG_DONTWAIT asks for -EAGAIN: hand it back instead of waiting for readiness.
  const int res = sock_.run(kOp, recv_op(fd, buf, n, flags, deadline, drained), (flags & MSG_DONTWAIT) ? 0 : POLLIN);
  if (!(flags & MSG_PEEK)) drained_ = static_cast<unsigned>(res) < n;
  mark_filled(buf, res);
  return static_cast<std::size_t>(res);
}

ReadBuffer TcpStream::read_buffer(Timeout timeout) {
  return sock_.read_buffer("weft::net::TcpStream::read_buffer", Deadline::after(timeout));
}

std::size_t TcpStream::read_some(void* buf, std::size_t len, Timeout timeout) {
  static constexpr const char* kOp = "weft::net::TcpStream::read_some";
  if (len == 0) {
    sock_.checked_fd(kOp);
    return 0;
  }
  check_buffer(buf, len);
  const Deadline deadline = Deadline::after(timeout);
  if (std::size_t got = 0; sock_.read_queued(kOp, buf, len, deadline, &got)) return got;
  const int fd = sock_.fd();
  const unsigned n = clamp_len(len);
  const int res = sock_.run(kOp, recv_op(fd, buf, n, 0, deadline, drained_), POLLIN);
  drained_ = static_cast<unsigned>(res) < n;
  mark_filled(buf, res);
  return static_cast<std::size_t>(res);
}

void TcpStream::read_exact(void* buf, std::size_t len, Timeout timeout) {
  static constexpr const char* kOp = "weft::net::TcpStream::read_exact";
  check_buffer(buf, len);
  const Deadline deadline = Deadline::after(timeout);
  auto* p = static_cast<char*>(buf);
  std::size_t got = 0;
  while (got < len) {
    char* at = p + got;
    if (std::size_t q = 0; sock_.read_queued(kOp, at, len - got, deadline, &q)) {
      if (q == 0) throw UnexpectedEof(kOp + sock_.subject(), got, len);
      got += q;
      continue;
    }
    const int fd = sock_.fd();
    const unsigned n = clamp_len(len - got);
    const int res = sock_.run(kOp, recv_op(fd, at, n, 0, deadline, drained_), POLLIN);
    drained_ = static_cast<unsigned>(res) < n;
    if (res == 0) throw UnexpectedEof(kOp + sock_.subject(), got, len);
    mark_filled(at, res);
    got += static_cast<std::size_t>(res);
  }
}

namespace {
/// The msghdr of readv/writev: at most IOV_MAX buffers, each checked as one.
msghdr iov_message(const char* op, std::span<const iovec> iov) {
  if (iov.size() > IOV_MAX) throw std::invalid_argument(std::string(op) + ": more than IOV_MAX iovecs");
  for (const iovec& v : iov) check_buffer(v.iov_base, v.iov_len);
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov.data());
  msg.msg_iovlen = iov.size();
  return msg;
}
}  // namespace

std::size_t TcpStream::readv(std::span<const iovec> iov, Timeout timeout) {
  static constexpr const char* kOp = "weft::net::TcpStream::readv";
  msghdr msg = iov_message(kOp, iov);
  const Deadline deadline = Deadline::after(timeout);
  if (sock_.read_queued_pending()) {
    // read_buffer() left a receive armed or bytes queued: fill the iovecs from the
    // queue in order, waiting only for the first bytes (as recvmsg would).
    std::size_t total = 0;
    bool served = false;
    for (const iovec& v : iov) {
      if (v.iov_len == 0) continue;
      if (served && !sock_.read_queued_ready()) break;
      std::size_t got = 0;
      try {
        if (!sock_.read_queued(kOp, v.iov_base, v.iov_len, deadline, &got)) break;
      } catch (...) {
        // Bytes already copied out of the queue exist nowhere else: return them.
        // The failure (a close, a cancellation) recurs at the caller's next call.
        if (served) break;
        throw;
      }
      served = true;
      total += got;
      if (got < v.iov_len) break;  // the queue ran empty, or the stream ended
    }
    if (served) return total;
  }
  const int fd = sock_.fd();
  const int res = sock_.run(kOp, IoOp::transfer(IoKind::recvmsg, fd, &msg, 0, 0, deadline), POLLIN);
#if WEFT_VALGRIND
  std::size_t left = static_cast<std::size_t>(res);
  for (const iovec& v : iov) {
    const std::size_t k = std::min(left, v.iov_len);
    mark_filled(v.iov_base, static_cast<int>(k));
    left -= k;
  }
#endif
  return static_cast<std::size_t>(res);
}

// ----------------------------------------------------------------- writes ----

// A write clears the drained mark (see recv_op()).
int TcpStream::run_write(const char* op, const IoOp& io, short poll_events) {
  const int res = sock_.run(op, io, poll_events);
  drained_ = false;
  return res;
}

std::size_t TcpStream::send(const void* buf, std::size_t len, int flags, Timeout timeout) {
  static constexpr const char* kOp = "weft::net::TcpStream::send";
  check_buffer(buf, len);
  const int fd = sock_.fd();
  const unsigned n = clamp_len(len);
  const IoOp io =
      IoOp::transfer(IoKind::send, fd, const_cast<void*>(buf), n, flags | MSG_NOSIGNAL, Deadline::after(timeout));
  return static_cast<std::size_t>(run_write(kOp, io, (flags & MSG_DONTWAIT) ? 0 : POLLOUT));
}

void TcpStream::write_all(const void* buf, std::size_t len, Timeout timeout) {
  static constexpr const char* kOp = "weft::net::TcpStream::write_all";
  check_buffer(buf, len);
  const Deadline deadline = Deadline::after(timeout);
  const auto* p = static_cast<const char*>(buf);
  std::size_t done = 0;
  if (len == 0) sock_.checked_fd(kOp);
  while (done < len) {
    const int fd = sock_.fd();
    const char* at = p + done;
    const unsigned n = clamp_len(len - done);
    const int res =
        run_write(kOp, IoOp::transfer(IoKind::send, fd, const_cast<char*>(at), n, MSG_NOSIGNAL, deadline), POLLOUT);
    if (res == 0) sock_.fail(-EPIPE, kOp);  // a stream send of n > 0 bytes never takes 0
    done += static_cast<std::size_t>(res);
  }
}

std::size_t TcpStream::writev(std::span<const iovec> iov, Timeout timeout) {
  static constexpr const char* kOp = "weft::net::TcpStream::writev";
  msghdr msg = iov_message(kOp, iov);
  const int fd = sock_.fd();
  const IoOp io = IoOp::transfer(IoKind::sendmsg, fd, &msg, 0, MSG_NOSIGNAL, Deadline::after(timeout));
  return static_cast<std::size_t>(run_write(kOp, io, POLLOUT));
}

std::size_t TcpStream::sendmsg(const msghdr& msg, int flags, Timeout timeout) {
  static constexpr const char* kOp = "weft::net::TcpStream::sendmsg";
  for (std::size_t i = 0; i < msg.msg_iovlen; ++i) check_buffer(msg.msg_iov[i].iov_base, msg.msg_iov[i].iov_len);
  const int fd = sock_.fd();
  const IoOp io =
      IoOp::transfer(IoKind::sendmsg, fd, const_cast<msghdr*>(&msg), 0, flags | MSG_NOSIGNAL, Deadline::after(timeout));
  return static_cast<std::size_t>(run_write(kOp, io, (flags & MSG_DONTWAIT) ? 0 : POLLOUT));
}

// ---------------------------------------------------------------- control ----

void TcpStream::shutdown(Shutdown how) {
  sock_.shutdown("weft::net::TcpStream::shutdown", how);
}

void TcpStream::set_nodelay(bool on) {
  sock_.set_option("weft::net::TcpStream::set_nodelay", IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0);
}

void TcpStream::set_keepalive(bool on, Duration idle_d, Duration interval_d, int count) {
  static constexpr const char* kOp = "weft::net::TcpStream::set_keepalive";
  // ceil of a saturated count cannot overflow: nanoseconds::max() is about 9.2e9 s.
  const auto idle = std::chrono::ceil<std::chrono::seconds>(std::chrono::nanoseconds(idle_d));
  const auto interval = std::chrono::ceil<std::chrono::seconds>(std::chrono::nanoseconds(interval_d));
  if (idle.count() < 0 || interval.count() < 0 || count < 0 || idle.count() > INT_MAX || interval.count() > INT_MAX)
    throw std::invalid_argument(std::string(kOp) + ": idle, interval and count must be >= 0 and fit an int (seconds)");
  sock_.set_option(kOp, SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0);
  if (!on) return;
  if (idle.count() > 0) sock_.set_option(kOp, IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(idle.count()));
  if (interval.count() > 0) sock_.set_option(kOp, IPPROTO_TCP, TCP_KEEPINTVL, static_cast<int>(interval.count()));
  if (count > 0) sock_.set_option(kOp, IPPROTO_TCP, TCP_KEEPCNT, count);
}

Address TcpStream::local_address() const {
  return sock_.local_address("weft::net::TcpStream::local_address");
}

}  // namespace weft::net
