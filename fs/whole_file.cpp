// fs/whole_file.cpp — read_file and write_file, built on File (whole_file.hpp).
//
// Invariants: one Deadline for the whole call, each step given what is left of it;
// the File is closed on every exit (its destructor on a throw).
#include <fcntl.h>

#include <algorithm>
#include <chrono>

#include <weft/fs/file.hpp>
#include <weft/fs/whole_file.hpp>

namespace weft::fs {

namespace {
// The first read of a file stat called empty (procfs and sysfs files say 0).
constexpr std::size_t kMinChunk = 4096;

// What is left of the call's deadline, as the next step's timeout.
Timeout left(Deadline d) noexcept {
  return d.is_none() ? kNoTimeout : Timeout(d.remaining());
}
}  // namespace

std::string read_file(std::string_view path, Timeout timeout) {
  const Deadline d = Deadline::after(timeout);
  File f = File::open(path, O_RDONLY, 0, left(d));
  std::string out;
  out.resize(std::max<std::size_t>(f.stat(left(d)).size + 1, kMinChunk));  // +1: the end shows in one read
  std::size_t got = 0;
  for (;;) {
    if (got == out.size()) out.resize(out.size() * 2);
    const std::size_t n = f.read_at(out.data() + got, out.size() - got, got, left(d));
    if (n == 0) break;
    got += n;
  }
  out.resize(got);
  f.close();
  return out;
}

void write_file(std::string_view path, std::string_view data, Timeout timeout) {
  const Deadline d = Deadline::after(timeout);
  File f = File::open(path, O_WRONLY | O_CREAT | O_TRUNC, 0666, left(d));
  f.write_at(data.data(), data.size(), 0, left(d));
  f.close();
}

}  // namespace weft::fs
