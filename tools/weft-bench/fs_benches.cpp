// weft-bench: file reads (fs/).
//   fs_read  4 KiB reads at random aligned offsets of a file in the page cache,
//            by --fibers fibers (64) each doing its share of N, through
//            --path ring (weft::fs on the io_uring engine), pool (the same calls
//            forced onto the Threaded pool, as the epoll engine runs regular
//            files) or pread (a plain pread loop on one thread of the pool, no
//            runtime in the way). ns per read (wall) and cpu_ns_per_op: CPU
//            per read from getrusage, of the whole process for ring and pool
//            (workers, pool threads, io-wq), of the reading thread for pread.
//
// Invariants: the file (--file-mib MiB, default 64, under the system temporary
// directory) is written and read once before the timing, so every read is served
// from the page cache; it is removed at the end. Every read is checked to return
// its full 4 KiB and the block's first byte; a wrong answer prints no figure.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <weft/fs/file.hpp>
#include <weft/fs/whole_file.hpp>
#include <weft/runtime/threaded/offload.hpp>

#include "bench.hpp"

namespace weft_bench {
namespace {

constexpr std::size_t kRead = 4096;

long long cpu_ns(int who) {
  rusage ru{};
  getrusage(who, &ru);
  auto ns = [](const timeval& t) { return t.tv_sec * 1'000'000'000LL + t.tv_usec * 1000LL; };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

// The block's first byte, as the file was written: a read that lands elsewhere shows.
char tag(std::uint64_t block) {
  return static_cast<char>(block * 2654435761u >> 24);
}

std::uint64_t next(std::uint64_t& s) {
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  return s * 2685821657736338717ULL;
}

Result bench_fs_read(weft::Runtime&, const Args& args, long n) {
  const std::string path_kind = args.str("--path", "ring");
  if (path_kind != "ring" && path_kind != "pool" && path_kind != "pread") fail("--path must be ring|pool|pread");
  const long fibers = args.num("--fibers", 64);
  const std::uint64_t blocks = static_cast<std::uint64_t>(args.num("--file-mib", 64)) * (1 << 20) / kRead;
  std::string file = (std::filesystem::temp_directory_path() / "weft-bench-fs-XXXXXX").string();
  const int tmp = ::mkstemp(file.data());
  if (tmp < 0) fail("fs_read: mkstemp failed");
  ::close(tmp);
  {
    std::string content(blocks * kRead, '\0');
    for (std::uint64_t b = 0; b < blocks; ++b) content[b * kRead] = tag(b);
    weft::fs::write_file(file, content);
    if (weft::fs::read_file(file) != content) fail("fs_read: the file did not read back");  // now cached
  }
  long bad = 0;
  long long t0 = 0, t1 = 0, c0 = 0, c1 = 0;
  if (path_kind == "pread") {
    // On a plain thread of the runtime's pool, so the worker is not held meanwhile.
    weft::offload([&] {
      const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) fail("fs_read: open failed");
      std::vector<char> buf(kRead);
      std::uint64_t s = 0x9e3779b97f4a7c15ULL;
      c0 = cpu_ns(RUSAGE_THREAD);
      t0 = now_ns();
      for (long i = 0; i < n; ++i) {
        const std::uint64_t b = next(s) % blocks;
        if (::pread(fd, buf.data(), kRead, static_cast<off_t>(b * kRead)) != static_cast<ssize_t>(kRead) ||
            buf[0] != tag(b))
          ++bad;
      }
      t1 = now_ns();
      c1 = cpu_ns(RUSAGE_THREAD);
      ::close(fd);
    });
  } else {
    weft::fs::File f = weft::fs::open(file, O_RDONLY);
    if (path_kind == "pool") {
      weft::fs::detail::run_on_pool(f);
      char warm;
      (void)f.read_at(&warm, 1, 0);  // starts the pool's threads outside the timing
    }
    std::vector<weft::JoinHandle<void>> hs;
    c0 = cpu_ns(RUSAGE_SELF);
    t0 = now_ns();
    for (long k = 0; k < fibers; ++k) {
      const long share = n / fibers + (k < n % fibers ? 1 : 0);
      hs.push_back(weft::spawn([&f, &bad, &blocks, share, k] {
        std::vector<char> buf(kRead);
        std::uint64_t s = 0x9e3779b97f4a7c15ULL + static_cast<std::uint64_t>(k) * 0x2545F4914F6CDD1DULL;
        for (long i = 0; i < share; ++i) {
          const std::uint64_t b = next(s) % blocks;
          if (f.read_at(buf.data(), kRead, b * kRead) != kRead || buf[0] != tag(b)) ++bad;
        }
      }));
    }
    for (auto& h : hs) h.join();
    t1 = now_ns();
    c1 = cpu_ns(RUSAGE_SELF);
    f.close();
  }
  std::filesystem::remove(file);
  if (bad != 0) fail("fs_read: " + std::to_string(bad) + " reads came back short or from the wrong block");
  const double cpu_per_op = static_cast<double>(c1 - c0) / static_cast<double>(n);
  char extra[160];
  std::snprintf(extra, sizeof extra, " path=%s fibers=%ld file_mib=%ld cpu_ns_per_op=%.1f", path_kind.c_str(),
                path_kind == "pread" ? 1L : fibers, args.num("--file-mib", 64), cpu_per_op);
  return {static_cast<double>(n), t1 - t0, extra};
}

Registrar r_fs_read{{"fs_read", 1, 400000, bench_fs_read, "--path --fibers --file-mib",
                     "fs_read 4 KiB random reads of a cached file (--path ring|pool|pread, --fibers 64); ns and "
                     "cpu_ns per read"}};

}  // namespace
}  // namespace weft_bench
