// weft/net/read_buffer.hpp — a chunk of received bytes lent by the runtime:
// TcpStream::read_buffer() returns one instead of copying into a buffer of yours.
//
// Invariants (states, owners, which thread touches what):
//  - Empty (no bytes: end of stream, or moved from) or holding one chunk: a buffer
//    of the worker's provided-buffer ring (runtime/uring/buf_ring.hpp) that the
//    kernel filled, or a heap buffer when no ring buffer was free (the epoll
//    engine has no ring: always); heap buffers are kept per thread for reuse.
//  - Move-only. The bytes stay valid and unchanged until reset() or destruction,
//    which give a ring buffer back for the kernel's next receive (on the worker's
//    thread at once, from any other thread at the worker's next tick). Holding
//    many leases starves that worker's buffered reads (they then fall back to
//    plain receives), so keep one only as long as its bytes are needed.
//  - Any thread may hold, read and drop a lease, also after its runtime is gone
//    (the ring's memory lives until its last lease ends).
// RecvBuffer, its former name, is a deprecated alias of it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

namespace weft::detail {
class BufRing;
}

namespace weft::net {

class ReadBuffer {
 public:
  ReadBuffer() noexcept = default;
  ReadBuffer(ReadBuffer&& o) noexcept
      : ring_(std::exchange(o.ring_, nullptr)),
        heap_(std::exchange(o.heap_, nullptr)),
        heap_size_(o.heap_size_),
        data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        bid_(o.bid_) {}
  ReadBuffer& operator=(ReadBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      ring_ = std::exchange(o.ring_, nullptr);
      heap_ = std::exchange(o.heap_, nullptr);
      heap_size_ = o.heap_size_;
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      bid_ = o.bid_;
    }
    return *this;
  }
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;
  ~ReadBuffer() { reset(); }

  [[nodiscard]] const char* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// True at end of stream (and once reset or moved from).
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::string_view view() const noexcept { return {data_, size_}; }
  /// True when the bytes sit in a ring buffer (false: the heap fallback).
  [[nodiscard]] bool from_ring() const noexcept { return ring_ != nullptr; }
  /// Drops the first `n` bytes (at most size()): for a parser that consumed them.
  void consume(std::size_t n) noexcept {
    if (n > size_) n = size_;
    data_ += n;
    size_ -= n;
  }
  /// Gives the buffer back now; the lease becomes empty.
  void reset() noexcept;

 private:
  friend class Socket;
  ReadBuffer(weft::detail::BufRing* ring, std::uint16_t bid, const char* data, std::size_t size) noexcept
      : ring_(ring), data_(data), size_(size), bid_(bid) {}
  ReadBuffer(char* heap, std::size_t heap_size, std::size_t size) noexcept
      : heap_(heap), heap_size_(heap_size), data_(heap), size_(size) {}

  weft::detail::BufRing* ring_ = nullptr;  // holds a reference while set
  char* heap_ = nullptr;                   // owned while set: back to the thread's cache at reset()
  std::size_t heap_size_ = 0;
  const char* data_ = nullptr;
  std::size_t size_ = 0;
  std::uint16_t bid_ = 0;
};

/// The former name of ReadBuffer, kept so that code written against it builds.
using RecvBuffer [[deprecated("use weft::net::ReadBuffer")]] = ReadBuffer;

}  // namespace weft::net
