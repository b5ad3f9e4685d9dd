// weft/fs/file.hpp — a file opened by a fiber, read and written at offsets by
// calls that park only the calling fiber (one ring op each on io_uring; on epoll a
// regular file's calls run on the Threaded pool). docs/fs.md says more.
//
// Invariants:
//  - States: empty -> open -> closing (no new op admitted) -> closed. Never back.
//  - The worker whose fiber opened it owns it; any other caller gets
//    CrossRuntimeError. A move with no op pending releases it; the next call claims
//    it. Simpler than net's Socket: no registered file.
//  - close() cancels pending ops, waits until all have ended (their buffers stay
//    valid), then closes the fd; they see operation_canceled. From elsewhere it is
//    handed to the owner's worker; a stopping runtime that refuses it closes the fd
//    at the worker thread's exit, and a File that outlived its worker's thread is
//    closed at once. Idempotent, never throws.
//  - On the pool a started syscall is not interrupted: a deadline or cancellation
//    is reported once it returns. FIFO/tty offsets are ignored.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include <weft/fs/error.hpp>
#include <weft/fs/stat.hpp>

namespace weft::fs {

class File;
namespace detail {
struct FileCore;
void run_on_pool(File& f) noexcept;
}  // namespace detail

class File {
 public:
  File() noexcept = default;
  ~File();
  /// Moving a File with no op pending releases it from its worker.
  File(File&& o) noexcept;
  /// Closes the current file first (waiting for its ops, see close()).
  File& operator=(File&& o) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  /// open(2) of `path` with `flags` (O_RDONLY, O_WRONLY | O_CREAT | O_TRUNC, ...;
  /// O_CLOEXEC is always added) and `mode` for a created file. Owned by the
  /// calling fiber's worker.
  static File open(std::string_view path, int flags, mode_t mode = 0666, Timeout timeout = kNoTimeout);

  /// Reads up to `len` bytes at `offset` into `buf`: the count read, short at the
  /// end of the file, 0 past it.
  std::size_t read_at(void* buf, std::size_t len, std::uint64_t offset, Timeout timeout = kNoTimeout);
  /// Writes all `len` bytes of `buf` at `offset` (short writes are continued).
  void write_at(const void* buf, std::size_t len, std::uint64_t offset, Timeout timeout = kNoTimeout);
  /// One preadv(2): fills the buffers in order from `offset`; the count read.
  std::size_t readv_at(std::span<const iovec> iov, std::uint64_t offset, Timeout timeout = kNoTimeout);
  /// One pwritev(2): the count written (may be short, e.g. on a full disk).
  std::size_t writev_at(std::span<const iovec> iov, std::uint64_t offset, Timeout timeout = kNoTimeout);
  /// Flushes the file's data and metadata (fsync(2)).
  void fsync(Timeout timeout = kNoTimeout);
  /// Flushes the file's data and what is needed to read it back (fdatasync(2)).
  void fdatasync(Timeout timeout = kNoTimeout);
  /// The open file's Stat (statx on the fd).
  Stat stat(Timeout timeout = kNoTimeout);

  /// See the invariants. Idempotent; never throws.
  void close() noexcept;

  [[nodiscard]] bool is_open() const noexcept;
  /// The fd, or -1 when empty or closed.
  [[nodiscard]] int fd() const noexcept;
  /// The path it was opened with (empty when empty).
  [[nodiscard]] const std::string& path() const noexcept;

 private:
  friend void detail::run_on_pool(File& f) noexcept;
  explicit File(detail::FileCore* c) noexcept : core_(c) {}
  void release_if_idle() noexcept;
  detail::FileCore* core_ = nullptr;
};

/// File::open.
inline File open(std::string_view path, int flags, mode_t mode = 0666, Timeout timeout = kNoTimeout) {
  return File::open(path, flags, mode, timeout);
}

namespace detail {
/// (Declared above.) Runs this File's data calls (reads, writes, syncs) on the Threaded pool as the
/// epoll engine does for a regular file, whatever the worker's engine: for the
/// benchmark that compares the two paths. A fiber of the owner; the File idle.
void run_on_pool(File& f) noexcept;
}  // namespace detail

}  // namespace weft::fs
