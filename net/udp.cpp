// net/udp.cpp — datagrams as sendmsg/recvmsg/send/recv IoOps run by the worker's
// engine. The msghdr, iovec and sockaddr of each op live in the calling frame until
// the op has ended.
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>

#include <weft/net/udp.hpp>
#include <weft/runtime/io_op.hpp>

#include "weft_build_config.hpp"

#if WEFT_VALGRIND
#include <valgrind/memcheck.h>
#endif

namespace weft::net {

using weft::detail::IoKind;
using weft::detail::IoOp;

namespace {

constexpr std::size_t kMaxDatagram = std::size_t{1} << 30;

inline void mark_filled([[maybe_unused]] void* buf, [[maybe_unused]] int n) {
#if WEFT_VALGRIND
  if (n > 0) VALGRIND_MAKE_MEM_DEFINED(buf, n);
#endif
}

void require_address(const Address& a, const char* op) {
  if (a.family() == Address::Family::none)
    throw std::invalid_argument(std::string(op) + ": the address is empty (Family::none)");
}

}  // namespace

UdpSocket UdpSocket::bind(const Address& local) {
  static constexpr const char* kOp = "weft::net::UdpSocket::bind";
  require_address(local, kOp);
  UdpSocket u;
  u.sock_ = Socket::open(kOp, local.domain(), SOCK_DGRAM);
  u.sock_.set_known_address("local", local);
  const int fd = u.sock_.checked_fd(kOp);
  if (::bind(fd, local.sockaddr_ptr(), local.size()) != 0) u.sock_.fail(-errno, kOp);
  u.local_ = local.family() == Address::Family::unix_path ? local : u.sock_.local_address(kOp);
  u.sock_.set_known_address("local", u.local_);
  return u;
}

void UdpSocket::connect(const Address& peer) {
  static constexpr const char* kOp = "weft::net::UdpSocket::connect";
  require_address(peer, kOp);
  const int fd = sock_.checked_fd(kOp);
  // A datagram connect only records the peer: no round trip, so no engine op.
  if (::connect(fd, peer.sockaddr_ptr(), peer.size()) != 0) sock_.fail(-errno, kOp);
  peer_ = peer;
  sock_.set_known_address("peer", peer);
}

std::size_t UdpSocket::send_to(const void* buf, std::size_t len, const Address& to, Timeout timeout) {
  static constexpr const char* kOp = "weft::net::UdpSocket::send_to";
  require_address(to, kOp);
  const int fd = sock_.fd();
  iovec iov{const_cast<void*>(buf), std::min(len, kMaxDatagram)};
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr*>(to.sockaddr_ptr());
  msg.msg_namelen = to.size();
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  const IoOp io = IoOp::transfer(IoKind::sendmsg, fd, &msg, 0, MSG_NOSIGNAL, Deadline::after(timeout));
  return static_cast<std::size_t>(sock_.run(kOp, io, POLLOUT));
}

std::size_t UdpSocket::recv_from(void* buf, std::size_t len, Address* from, Timeout timeout) {
  static constexpr const char* kOp = "weft::net::UdpSocket::recv_from";
  const int fd = sock_.fd();
  Address sender;
  iovec iov{buf, std::min(len, kMaxDatagram)};
  msghdr msg{};
  msg.msg_name = sender.storage();
  msg.msg_namelen = Address::capacity();
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  const int res = sock_.run(kOp, IoOp::transfer(IoKind::recvmsg, fd, &msg, 0, 0, Deadline::after(timeout)), POLLIN);
  mark_filled(buf, res);
  if (from) {
    try {
      sender.set_size(msg.msg_namelen);
    } catch (const std::invalid_argument&) {
      sender = Address();  // an unnamed (unbound) Unix sender
    }
    *from = sender;
  }
  return static_cast<std::size_t>(res);
}

std::size_t UdpSocket::send(const void* buf, std::size_t len, Timeout timeout) {
  static constexpr const char* kOp = "weft::net::UdpSocket::send";
  const int fd = sock_.fd();
  const auto n = static_cast<unsigned>(std::min(len, kMaxDatagram));
  const IoOp io = IoOp::transfer(IoKind::send, fd, const_cast<void*>(buf), n, MSG_NOSIGNAL, Deadline::after(timeout));
  return static_cast<std::size_t>(sock_.run(kOp, io, POLLOUT));
}

std::size_t UdpSocket::recv(void* buf, std::size_t len, Timeout timeout) {
  static constexpr const char* kOp = "weft::net::UdpSocket::recv";
  const int fd = sock_.fd();
  const auto n = static_cast<unsigned>(std::min(len, kMaxDatagram));
  const int res = sock_.run(kOp, IoOp::transfer(IoKind::recv, fd, buf, n, 0, Deadline::after(timeout)), POLLIN);
  mark_filled(buf, res);
  return static_cast<std::size_t>(res);
}

}  // namespace weft::net
