// weft/net/udp.hpp — a datagram socket (UDP over IPv4/IPv6, or a Unix datagram path)
// whose sends and receives are I/O engine ops that park only the calling fiber.
//
// Invariants (states, owners, which thread touches what):
//  - Evented-only and owned by one worker at a time, like every socket
//    (net/socket.hpp).
//  - One call moves one datagram. recv/recv_from return its size, truncated to the
//    buffer (the rest of a longer datagram is dropped, as recvfrom(2) does);
//    0 is a valid (empty) datagram, not an end of stream.
//  - Every blocking call takes a Timeout (default kNoTimeout); expiry throws
//    std::errc::timed_out. close() while other fibers wait cancels them (they throw
//    std::errc::operation_canceled) and waits for their completions first.
//  - Errors follow net/error.hpp: ECONNREFUSED may surface on a connected socket
//    after the peer's port answered ICMP unreachable.
#pragma once

#include <cstddef>

#include <weft/net/address.hpp>
#include <weft/net/error.hpp>
#include <weft/net/socket.hpp>

namespace weft::net {

class UdpSocket {
 public:
  UdpSocket() noexcept = default;
  UdpSocket(UdpSocket&&) noexcept = default;
  UdpSocket& operator=(UdpSocket&&) noexcept = default;

  /// A socket bound to `local` (port 0: the kernel picks; see local_address()).
  static UdpSocket bind(const Address& local);

  /// Sets the default peer: send()/recv() then talk to it only.
  void connect(const Address& peer);

  /// One datagram to `to`; returns the bytes sent (all of them, or an error).
  std::size_t send_to(const void* buf, std::size_t len, const Address& to, Timeout timeout = kNoTimeout);
  /// One datagram; its sender goes to `*from` when non-null.
  std::size_t recv_from(void* buf, std::size_t len, Address* from, Timeout timeout = kNoTimeout);
  /// To / from the connected peer.
  std::size_t send(const void* buf, std::size_t len, Timeout timeout = kNoTimeout);
  std::size_t recv(void* buf, std::size_t len, Timeout timeout = kNoTimeout);

  void close() noexcept { sock_.close(); }
  [[nodiscard]] bool is_open() const noexcept { return sock_.is_open(); }
  [[nodiscard]] int native_handle() const noexcept { return sock_.fd(); }
  /// The bound address (the real port when bound to port 0).
  [[nodiscard]] const Address& local_address() const noexcept { return local_; }
  /// The connected peer (none until connect()).
  [[nodiscard]] const Address& peer_address() const noexcept { return peer_; }

 private:
  Socket sock_;
  Address local_;
  Address peer_;
};

}  // namespace weft::net
