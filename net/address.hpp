// weft/net/address.hpp — a socket address: IPv4, IPv6 (with scope id) or Unix-domain
// (filesystem path or abstract name), parsed from and formatted to text.
//
// Invariants (states, owners, which thread touches what):
//  - A plain value type: no shared state, no atomics; any thread may use its own copy.
//  - States: none (len_ == 0, AF_UNSPEC), ipv4 (len_ == sizeof(sockaddr_in)), ipv6
//    (len_ == sizeof(sockaddr_in6)), unix_path (offsetof(sun_path) < len_ <= sizeof(sockaddr_un)).
//    Every constructor and set_size() validates, so an Address is never half-formed;
//    the one exception is storage(), which hands the raw bytes to the kernel until
//    set_size() validates them (a failed set_size() leaves the Address as none).
//  - Unix paths: a filesystem path is stored NUL-terminated and len_ counts the NUL
//    (as the kernel reports it); an abstract name ('@' in text) is stored with a
//    leading NUL byte and len_ counts exactly its bytes (no terminator).
//  - Bytes of ss_ past len_ are zero for addresses built here, so operator== can
//    compare the first len_ bytes (ipv6 flowinfo is kept; ports compare in network order).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace weft::net {

class Address {
 public:
  enum class Family : std::uint8_t { none, ipv4, ipv6, unix_path };

  Address() = default;  // Family::none

  /// "1.2.3.4:80", "[::1]:80", "[fe80::1%lo]:80", "unix:/path/sock", "unix:@abstract".
  /// Throws std::invalid_argument naming the input and what is wrong.
  static Address parse(std::string_view text);
  /// parse() without the exception: std::nullopt on any bad input.
  static std::optional<Address> try_parse(std::string_view text) noexcept;
  /// Numeric host only ("127.0.0.1", "::1", "fe80::1%lo"; brackets allowed around
  /// IPv6); throws std::invalid_argument.
  static Address from_host_port(std::string_view numeric_host, std::uint16_t port);
  static Address ipv4_any(std::uint16_t port);
  static Address ipv4_loopback(std::uint16_t port);
  static Address ipv6_any(std::uint16_t port);
  static Address ipv6_loopback(std::uint16_t port);
  /// Leading '@' = abstract namespace. Throws std::invalid_argument if empty, if it
  /// contains a NUL byte, or if too long for sun_path.
  static Address unix_path(std::string_view path);
  /// From a kernel-filled sockaddr (accept, recvfrom, getsockname). Throws
  /// std::invalid_argument on an unknown family or a bad length.
  static Address from_sockaddr(const sockaddr* sa, socklen_t len);

  Family family() const noexcept;
  int domain() const noexcept;                  // AF_INET / AF_INET6 / AF_UNIX; AF_UNSPEC for none
  std::uint16_t port() const noexcept;          // 0 for unix and none
  Address with_port(std::uint16_t port) const;  // std::logic_error for unix/none
  std::string host() const;                     // "1.2.3.4", "::1", "fe80::1%lo", the unix path ("@name" for abstract)
  /// Round-trips through parse(): "1.2.3.4:80", "[::1]:80", "unix:/p"; "<no address>" for none.
  std::string to_string() const;
  /// IPv6 scope id (interface index); 0 for other families.
  std::uint32_t scope_id() const noexcept;
  /// True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104.
  bool is_loopback() const noexcept;

  const sockaddr* sockaddr_ptr() const noexcept { return reinterpret_cast<const sockaddr*>(&ss_); }
  socklen_t size() const noexcept { return len_; }
  /// For the kernel to fill (accept/recvfrom): the full storage; then set_size(len).
  sockaddr* storage() noexcept { return reinterpret_cast<sockaddr*>(&ss_); }
  static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }
  /// Validates like from_sockaddr; on failure throws and leaves *this as none.
  void set_size(socklen_t len);

  friend bool operator==(const Address& a, const Address& b) noexcept;
  friend bool operator!=(const Address& a, const Address& b) noexcept { return !(a == b); }

 private:
  sockaddr_storage ss_{};
  socklen_t len_ = 0;
};

namespace detail {
/// `s` in double quotes with non-printable bytes, '"' and '\\' as \xNN: how
/// net/ error messages name the input they refuse.
std::string quoted(std::string_view s);
}  // namespace detail

}  // namespace weft::net
