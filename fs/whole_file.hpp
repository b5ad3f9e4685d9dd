// weft/fs/whole_file.hpp — a whole file in one call: read_file() returns its bytes,
// write_file() replaces them. Built on File (file.hpp), so both run where the
// worker's engine runs file ops (the ring, or the Threaded pool on epoll).
//
// Invariants:
//  - `timeout` covers the whole call (open, every read or write, the close); the
//    error model is error.hpp's: what() names the call inside (open, read_at...)
//    and the path.
//  - read_file reads until the end of the file, whatever size stat reported (a
//    file that grows meanwhile is read to the end seen by the last read).
//  - write_file opens with O_WRONLY | O_CREAT | O_TRUNC (mode 0666 before the
//    umask) and writes every byte; it does not fsync: call File::fsync for that.
//  - Fiber context only, as every fs call.
#pragma once

#include <string>
#include <string_view>

#include <weft/fs/error.hpp>

namespace weft::fs {

/// The whole content of the file at `path`.
std::string read_file(std::string_view path, Timeout timeout = kNoTimeout);

/// Replaces the content of the file at `path` with `data` (creating it).
void write_file(std::string_view path, std::string_view data, Timeout timeout = kNoTimeout);

}  // namespace weft::fs
