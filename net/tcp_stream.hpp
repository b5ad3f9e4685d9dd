// weft/net/tcp_stream.hpp — a connected stream socket (TCP, or a Unix-domain stream)
// whose every blocking call is an I/O engine op that parks only the calling fiber.
//
// Invariants (states, owners, which thread touches what):
//  - Evented-only: every call throws CrossRuntimeError from a plain thread, and from
//    a fiber of a worker other than the one using the stream (net/socket.hpp: one
//    worker owns a socket at a time; moving an idle stream, e.g. into a fiber
//    spawned on another worker, hands it over to the worker of its next op).
//  - Several fibers of the owner may use one stream at once (typically one reader
//    and one writer); ops of the same direction run concurrently in the kernel's
//    order, which is rarely what a protocol wants.
//  - Every blocking call takes a Timeout (default kNoTimeout) bounding the whole call;
//    expiry throws std::errc::timed_out (error.hpp). Buffers passed in must stay
//    valid for the call only: the call returns after the kernel is done with them.
//  - Writes go through send/sendmsg with MSG_NOSIGNAL: never SIGPIPE; a write to a
//    reset peer throws EPIPE or ECONNRESET.
//  - End of stream: read_some/recv/readv return 0. read_exact throws UnexpectedEof.
//  - close() (and the destructor) while other fibers have ops pending cancels them,
//    waits for their completions, then closes the fd; they throw
//    std::errc::operation_canceled, as does any call made while a close() is under
//    way. From a plain thread, another worker or a Timer callback the close is
//    handed to the stream's worker (net/socket.hpp).
//  - Every duration argument takes any std::chrono duration, saturated (Duration,
//    error.hpp): hours::max() means no timeout.
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <span>
#include <string_view>

#include <weft/net/address.hpp>
#include <weft/net/error.hpp>
#include <weft/net/read_buffer.hpp>
#include <weft/net/socket.hpp>

struct msghdr;

namespace weft::net {

class TcpListener;

class TcpStream {
 public:
  /// Not connected; every op throws bad_file_descriptor.
  TcpStream() noexcept = default;
  TcpStream(TcpStream&&) noexcept = default;
  /// Closes the current connection first (waiting for its ops, see close()).
  TcpStream& operator=(TcpStream&&) noexcept = default;

  /// Connects to `to` (IPv4, IPv6 or a Unix stream path).
  static TcpStream connect(const Address& to, Timeout timeout = kNoTimeout);
  /// Resolves `host` and `service` (net::resolve, DNS on the runtime's pool) and
  /// tries each address in order until one connects. `timeout` covers the lookup and
  /// every attempt. On failure the error names the host and the last attempt.
  static TcpStream connect(std::string_view host, std::string_view service, Timeout timeout = kNoTimeout);

  /// The next bytes of the stream in a buffer lent by the runtime, without a copy
  /// into one of yours; empty at end of stream. The first call arms a multishot
  /// receive into the worker's provided-buffer ring (Config::recv_buffers), which
  /// stays armed from one call to the next, so the kernel's poll on the socket is
  /// not re-armed for every read (docs/measurements/buffered-reads.md has the
  /// figures). Chunks that arrive while the caller is away queue on the stream (a
  /// few; past that TCP's window holds the peer back). Where the ring is off, full
  /// or unsupported by the kernel, one plain receive fills a heap buffer instead.
  /// Once used, read_some, read_exact, readv and recv (flags 0) read the same
  /// queue first; recv with flags throws std::invalid_argument while the receive
  /// is armed or bytes are queued. One fiber at a time may wait in read_buffer on
  /// a stream (a second throws std::logic_error). The stream stays with its
  /// worker while the receive is armed or bytes are queued.
  ReadBuffer read_buffer(Timeout timeout = kNoTimeout);
  /// Up to `len` bytes; 0 = the peer ended the stream (or len == 0).
  std::size_t read_some(void* buf, std::size_t len, Timeout timeout = kNoTimeout);
  /// Exactly `len` bytes, or UnexpectedEof (the bytes that did arrive are in `buf`).
  void read_exact(void* buf, std::size_t len, Timeout timeout = kNoTimeout);
  /// All `len` bytes (several sends when the kernel takes less).
  void write_all(const void* buf, std::size_t len, Timeout timeout = kNoTimeout);
  void write_all(std::string_view s, Timeout timeout = kNoTimeout) { write_all(s.data(), s.size(), timeout); }

  /// One recv(2) with `flags` (MSG_PEEK, MSG_WAITALL, ...); 0 = end of stream.
  std::size_t recv(void* buf, std::size_t len, int flags = 0, Timeout timeout = kNoTimeout);
  /// One send(2) with `flags` | MSG_NOSIGNAL; may send fewer than `len` bytes.
  std::size_t send(const void* buf, std::size_t len, int flags = 0, Timeout timeout = kNoTimeout);
  /// One scatter read (recvmsg); 0 = end of stream.
  std::size_t readv(std::span<const iovec> iov, Timeout timeout = kNoTimeout);
  /// One gather write (sendmsg, MSG_NOSIGNAL); may write fewer bytes than given.
  std::size_t writev(std::span<const iovec> iov, Timeout timeout = kNoTimeout);
  /// One sendmsg(2) with `flags` | MSG_NOSIGNAL (control messages allowed).
  std::size_t sendmsg(const msghdr& msg, int flags = 0, Timeout timeout = kNoTimeout);

  /// shutdown(2): ends reading, writing (the peer reads end of stream) or both.
  void shutdown(Shutdown how = Shutdown::write);
  /// See the invariants; idempotent, never throws.
  void close() noexcept { sock_.close(); }
  [[nodiscard]] bool is_open() const noexcept { return sock_.is_open(); }
  [[nodiscard]] int native_handle() const noexcept { return sock_.fd(); }

  /// TCP_NODELAY: send small writes at once (no Nagle delay).
  void set_nodelay(bool on);
  /// SO_KEEPALIVE; non-zero `idle`, `interval`, `count` also set TCP_KEEPIDLE,
  /// TCP_KEEPINTVL and TCP_KEEPCNT (zero keeps the system's value). The durations
  /// are rounded up to whole seconds; negative ones, or ones above INT_MAX seconds
  /// (hours::max() included: Duration saturates), throw std::invalid_argument.
  void set_keepalive(bool on, Duration idle = std::chrono::seconds(0), Duration interval = std::chrono::seconds(0),
                     int count = 0);

  /// getsockname(2).
  [[nodiscard]] Address local_address() const;
  /// The address connected to or accepted from (none for a default-constructed stream).
  [[nodiscard]] const Address& peer_address() const noexcept { return sock_.known_address(); }

 private:
  friend class TcpListener;
  explicit TcpStream(Socket&& s) noexcept : sock_(std::move(s)) {}
  /// connect(to, timeout) within the caller's `deadline` (an attempt of the name form).
  static TcpStream connect_by(const Address& to, Deadline deadline);
  /// Every write goes through here: it runs the op and clears drained_ (tcp_stream.cpp).
  int run_write(const char* op, const weft::detail::IoOp& io, short poll_events);
  Socket sock_;
  /// The last read returned less than asked and nothing was written since: the
  /// socket was drained, so the next read arms its poll first (tcp_stream.cpp).
  /// Owner worker's fibers only.
  bool drained_ = false;
};

}  // namespace weft::net
