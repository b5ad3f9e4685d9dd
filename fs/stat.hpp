// weft/fs/stat.hpp — what fs::stat() and File::stat() say about a file: the
// fields of statx(2) a server asks for, in plain types.
//
// Invariants:
//  - A Stat is a value, filled from one statx(STATX_BASIC_STATS) result; a field
//    the filesystem did not report is 0.
//  - fs::stat(path) follows symlinks (as stat(2) does); it runs as IORING_OP_STATX
//    on the ring and as statx(2) on the Threaded pool on the epoll engine, with the
//    error model, timeout and caller rules of every fs call (error.hpp, file.hpp).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string_view>

#include <weft/fs/error.hpp>

namespace weft::fs {

struct Stat {
  std::uint64_t size = 0;     ///< bytes
  std::uint32_t mode = 0;     ///< type and permission bits (S_IFREG | 0644 ...)
  std::uint32_t nlink = 0;    ///< hard links
  std::uint64_t ino = 0;      ///< inode number
  std::uint64_t blocks = 0;   ///< 512-byte blocks allocated
  std::int64_t mtime_ns = 0;  ///< last modification, ns since the epoch
  std::uint32_t uid = 0, gid = 0;

  [[nodiscard]] bool is_regular() const noexcept { return S_ISREG(mode); }
  [[nodiscard]] bool is_directory() const noexcept { return S_ISDIR(mode); }
  [[nodiscard]] bool is_fifo() const noexcept { return S_ISFIFO(mode); }
};

/// The file at `path` (symlinks followed). Fiber context only.
Stat stat(std::string_view path, Timeout timeout = kNoTimeout);

namespace detail {
/// A Stat from a statx(2) result (fs/file_ops.cpp).
Stat stat_of(const struct statx& sx) noexcept;
}  // namespace detail

}  // namespace weft::fs
