// tests/net/buffered_test_support.hpp — what the buffered-read tests share: the
// skip where the kernel has no multishot receive into a provided-buffer ring,
// byte patterns named by a seed, and joining many fibers.
#pragma once

#include <liburing.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <weft/net/tcp_stream.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "net_test_support.hpp"

namespace weft::test {

// One multishot receive with buffer selection on a socketpair, on a ring of our
// own: true when its first CQE carries a ring buffer and IORING_CQE_F_MORE.
inline bool multishot_recv_works() {
  io_uring ring;
  if (io_uring_queue_init(8, &ring, 0) < 0) return false;
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  void* mem = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  static char bufs[2][64];
  int sv[2] = {-1, -1};
  bool ok = false;
  if (mem != MAP_FAILED && ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
    auto* br = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(br);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(mem);
    reg.ring_entries = 2;
    reg.bgid = 7;
    if (io_uring_register_buf_ring(&ring, &reg, 0) == 0) {
      for (int i = 0; i < 2; ++i)
        io_uring_buf_ring_add(br, bufs[i], sizeof bufs[i], static_cast<unsigned short>(i), io_uring_buf_ring_mask(2),
                              i);
      io_uring_buf_ring_advance(br, 2);
      io_uring_sqe* sqe = io_uring_get_sqe(&ring);
      io_uring_prep_recv_multishot(sqe, sv[0], nullptr, 0, 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = 7;
      io_uring_submit(&ring);
      if (::write(sv[1], "x", 1) == 1) {
        io_uring_cqe* cqe = nullptr;
        __kernel_timespec ts{5, 0};
        if (io_uring_wait_cqe_timeout(&ring, &cqe, &ts) == 0) {
          ok = cqe->res == 1 && (cqe->flags & IORING_CQE_F_MORE) && (cqe->flags & IORING_CQE_F_BUFFER);
          io_uring_cqe_seen(&ring, cqe);
        }
      }
    }
  }
  io_uring_queue_exit(&ring);  // cancels the receive, drops the registration
  for (int fd : sv)
    if (fd >= 0) ::close(fd);
  if (mem != MAP_FAILED) ::munmap(mem, page);
  return ok;
}

/// Exits 77 (skip) where the kernel has no multishot receive into a
/// provided-buffer ring (before 6.0): nothing would be buffered there.
inline void require_buffered_recv() {
  if (!multishot_recv_works()) {
    std::fprintf(stderr, "SKIP: no multishot receive into a provided-buffer ring here (kernel < 6.0?)\n");
    std::exit(77);
  }
}

/// True when the `n` bytes at `p` are bytes [off, off + n) of pattern `seed`.
inline bool matches(std::uint64_t seed, std::uint64_t off, const void* p, std::size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i)
    if (b[i] != pattern_byte(seed, off + i)) return false;
  return true;
}

/// Bytes [off, off + n) of pattern `seed`.
inline std::string pattern(std::uint64_t seed, std::uint64_t off, std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(pattern_byte(seed, off + i));
  return s;
}

/// Writes bytes [0, total) of pattern `seed` in pieces of 1..max_piece bytes (sizes
/// from Rng(rng_seed)); `progress` (if given) follows the bytes written.
inline void write_pattern(weft::net::TcpStream& s, std::uint64_t seed, std::size_t total, std::size_t max_piece,
                          std::uint64_t rng_seed, std::atomic<long>* progress = nullptr) {
  weft::test::Rng rng(rng_seed);
  std::vector<unsigned char> buf(max_piece);
  std::size_t off = 0;
  while (off < total) {
    const std::size_t n = std::min(total - off, rng.between(1, max_piece));
    for (std::size_t i = 0; i < n; ++i) buf[i] = pattern_byte(seed, off + i);
    s.write_all(buf.data(), n);
    off += n;
    if (progress) progress->store(static_cast<long>(off), std::memory_order_relaxed);
  }
}

/// Joins every handle; the what() of the first exception, or "" when none threw.
inline std::string join_all(std::vector<weft::JoinHandle<void>>& hs) {
  std::string first;
  for (auto& h : hs) {
    try {
      h.join();
    } catch (const std::exception& e) {
      if (first.empty()) first = e.what();
    }
  }
  return first;
}

[[noreturn]] inline void fail(const std::string& what) {
  throw std::runtime_error(what);
}

}  // namespace weft::test
