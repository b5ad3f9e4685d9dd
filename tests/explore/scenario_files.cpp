// tests/explore/scenario_files.cpp — the files scenario: each of a few files
// (weft::fs::File) is opened by a fiber on one worker, whose fibers then write
// its blocks at offsets (write_at, writev_at), read written blocks back
// (read_at, readv_at), sync and stat it, some under short timeouts, some
// cancelled, and maybe close it under them; a fiber of another worker tries it;
// at the end an idle file is moved to a fiber of any worker, or closed from a
// plain thread. The explorer shortens its reads and writes and interrupts them.
// The shutdown scenario runs the same load and ends the runtime under it.
// Invariants:
//  - bytes read from a block whose write returned are the bytes written there,
//    at every read and in the file left on disk (each block has one writer; a
//    write that failed makes its block unknown, never its neighbours');
//  - a file's size is at least the end of every block written before the stat;
//  - every call ends as fs/error.hpp documents: its result, timed_out only with a
//    timeout, operation_canceled or bad_file_descriptor only once a close began,
//    FiberCancelled only in a cancelled fiber, CrossRuntimeError from a fiber of
//    a worker that does not own the file;
//  - no fd is left open.
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <weft/fs/file.hpp>

#include "explore.hpp"

namespace weft::explore::files {
namespace {

using weft::fs::File;

unsigned char pattern(std::uint64_t seed, std::uint64_t off) noexcept {
  return static_cast<unsigned char>((off * 0x9E3779B97F4A7C15ull + seed) >> 56);
}

/// One file and what is known of it. Touched by fibers of its owner worker only,
/// then (after the runtime) by the main thread.
struct Target {
  std::string path;
  std::uint64_t seed = 0;
  std::size_t block = 0;
  std::vector<char> written;  ///< the block's write returned: its bytes are known
  bool opened = false;        ///< open() succeeded (an injected ENOMEM may refuse it)
  unsigned writers_left = 0;  ///< writer fibers not yet ended
  bool closing = false;       ///< a close() of it began
  std::uint64_t reads = 0, writes = 0, failures = 0;

  /// A written block from `from` on (wrapping), or npos.
  [[nodiscard]] std::size_t written_from(std::size_t from) const {
    for (std::size_t i = 0; i < written.size(); ++i)
      if (const std::size_t b = (from + i) % written.size(); written[b]) return b;
    return std::string::npos;
  }
  [[nodiscard]] std::uint64_t written_end() const {
    for (std::size_t b = written.size(); b > 0; --b)
      if (written[b - 1]) return b * block;
    return 0;
  }
};

class FilesLoad final : public Load {
 public:
  FilesLoad(weft::Runtime& rt, const Run& run, bool interrupted)
      : rt_(rt), run_(run), interrupted_(interrupted), r_(run.rng(11)) {
    std::string t = (std::filesystem::temp_directory_path() / "weft-explore-XXXXXX").string();
    if (!::mkdtemp(t.data())) FAIL_NOW("mkdtemp failed");
    dir_ = t;
  }
  ~FilesLoad() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void start() override {
    static constexpr std::size_t kBlock[] = {512, 4096, 5000, 16384};
    const unsigned n = static_cast<unsigned>(r_.between(1, 3));
    for (unsigned i = 0; i < n; ++i) {
      auto t = std::make_unique<Target>();
      t->path = dir_ + "/f" + std::to_string(i);
      t->seed = r_.next();
      t->block = kBlock[r_.next() % 4];
      const auto blocks = static_cast<std::size_t>(r_.between(8, 24));
      t->written.assign(blocks, 0);
      targets_.push_back(std::move(t));
    }
    for (unsigned i = 0; i < n; ++i) {
      const unsigned k = i % rt_.workers();
      handles_.push_back(rt_.spawn_on(k, [this, i, k, seed = r_.next()] { owner(*targets_[i], k, Rng(seed)); },
                                      {.name = "file owner"}));
    }
  }

  void finish() override {
    phase("files: joining");
    for (auto& h : handles_) join_load_fiber(h, run_, interrupted_, "a file's owner fiber");
    if (interrupted_) check_disk();  // the runtime is gone; what was written stays written
  }

  /// After the runtime: the bytes on disk, block by block.
  void check_disk() {
    for (const auto& t : targets_) {
      if (!t->opened) continue;
      const int fd = ::open(t->path.c_str(), O_RDONLY | O_CLOEXEC);
      EXPECT(fd >= 0, "the file " + t->path + " is gone");
      std::vector<unsigned char> buf(t->block);
      for (std::size_t b = 0; b < t->written.size(); ++b) {
        if (!t->written[b]) continue;
        const ssize_t got = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(b * t->block));
        EXPECT(got == static_cast<ssize_t>(buf.size()),
               "block " + std::to_string(b) + " of " + t->path + " short on disk");
        check_block(*t, b, buf.data(), "on disk");
      }
      ::close(fd);
      note(t->path.substr(dir_.size()) + ": reads " + std::to_string(t->reads) + ", writes " +
           std::to_string(t->writes) + ", failed calls " + std::to_string(t->failures) +
           (t->closing ? ", closed under its users" : ""));
    }
  }

 private:
  static void check_block(const Target& t, std::size_t b, const unsigned char* p, const char* where) {
    const std::uint64_t off = b * t.block;
    for (std::size_t i = 0; i < t.block; ++i)
      if (p[i] != pattern(t.seed, off + i))
        FAIL_NOW(std::string("files: ") + where + ": byte " + std::to_string(off + i) + " of " + t.path + " is " +
                 std::to_string(p[i]) + ", written as " + std::to_string(pattern(t.seed, off + i)));
  }

  /// How a call on `t` ended with the exception in flight: documented, and
  /// possible now (see the invariants); returns whether the fiber goes on.
  bool failed(Target& t, const char* op, bool timed) {
    const Outcome o = classify(run_, std::current_exception(), op);
    ++t.failures;
    switch (o) {
      case Outcome::timed_out:
        EXPECT(timed, std::string(op) + " timed out without a timeout");
        return true;
      case Outcome::canceled:
      case Outcome::bad_fd:
        EXPECT(t.closing, std::string(op) + " ended with " + name_of(o) + " on a file nobody closed");
        return false;
      case Outcome::fiber_cancelled:
        EXPECT(weft::this_fiber::cancelled(), std::string(op) + " threw FiberCancelled in a fiber nobody cancelled");
        throw weft::FiberCancelled();
      case Outcome::no_memory:
        return true;
      default:
        FAIL_NOW(std::string(op) + " on a file ended with " + name_of(o));
    }
  }

  // The fiber that opens the file and runs its users on its own worker. Memory
  // may run out (injected) anywhere here: the run then stops for this file.
  void owner(Target& t, unsigned k, Rng r) {
    try {
      File f = open(t);  // not assigned: a move of an idle File would release it
      t.opened = f.is_open();
      if (t.opened) use(t, f, k, r);
    } catch (const weft::FiberCancelled&) {
      EXPECT(interrupted_, "a file's owner fiber was cancelled");
      throw;
    } catch (const std::bad_alloc&) {
      EXPECT(run_.enomem(), "std::bad_alloc without injected ENOMEM");
    }
  }

  File open(Target& t) {
    try {
      return weft::fs::open(t.path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    } catch (...) {
      failed(t, "weft::fs::open", false);
      return File();
    }
  }

  void use(Target& t, File& f, unsigned k, Rng& r) {
    if (rt_.workers() > 1 && r.next() % 2) {
      // Another worker's fiber: refused, with nothing of the file touched. Joined
      // whatever happens: it refers to `f`.
      auto other = rt_.spawn_on(1 - k, [&f] {
        char c;
        try {
          (void)f.read_at(&c, 1, 0);
          FAIL_NOW("read_at from a worker not owning the file succeeded");
        } catch (const weft::CrossRuntimeError&) {
        }
      });
      const weft::this_fiber::DeferCancellation defer;
      try {
        other.join();
      } catch (const weft::FiberCancelled&) {  // the shutdown cancelled it before it ran
        EXPECT(interrupted_, "a fiber trying another worker's file was cancelled");
      }
    }
    {
      JoinSet users(run_);
      const unsigned writers = static_cast<unsigned>(r.between(1, 3));
      t.writers_left = writers;
      for (unsigned w = 0; w < writers; ++w)
        users.add(rt_.spawn_on(k, [&, w, writers, seed = r.next()] { writer(t, f, w, writers, Rng(seed)); }));
      const unsigned readers = static_cast<unsigned>(r.between(1, 3));
      for (unsigned i = 0; i < readers; ++i) {
        auto& h = users.add(rt_.spawn_on(k, [&, seed = r.next()] { reader(t, f, Rng(seed)); }));
        if (r.next() % 6 == 0) h.cancel();
      }
      users.add(rt_.spawn_on(k, [&, seed = r.next()] { syncer(t, f, Rng(seed)); }));
      if (r.next() % 3 == 0) {
        users.add(rt_.spawn_on(k, [&, delay = r.between(0, 2000)] {
          weft::sleep_for(std::chrono::microseconds(delay));
          t.closing = true;
          f.close();
          EXPECT(!f.is_open(), "the file is open after close()");
        }));
      }
      jitter(r, 8);
      (void)users.join();
    }
    if (!f.is_open()) return;
    const weft::fs::Stat st = f.stat();
    EXPECT(st.size >= t.written_end(),
           t.path + " is " + std::to_string(st.size) + " bytes, written to " + std::to_string(t.written_end()));
    if (r.next() % 2) {
      // Moved while idle: the File is released, and the first call elsewhere claims it.
      const unsigned to = static_cast<unsigned>(r.next() % rt_.workers());
      auto verifier = rt_.spawn_on(to, [this, &t, g = std::move(f)]() mutable {
        try {
          verify_all(t, g);
        } catch (const std::bad_alloc&) {
          EXPECT(run_.enomem(), "std::bad_alloc without injected ENOMEM");
        }
      });
      const weft::this_fiber::DeferCancellation defer;  // joined whatever happens: it uses `t`
      verifier.join();
      return;
    }
    // Closed from a plain thread: handed to this worker, which must stay free meanwhile.
    std::atomic<bool> done{false};
    std::thread closer([&] {
      f.close();
      done.store(true);
    });
    {
      const weft::this_fiber::DeferCancellation defer;  // the thread uses `f` until done
      while (!done.load()) {
        try {
          weft::sleep_for(std::chrono::microseconds(100));
        } catch (const std::bad_alloc&) {  // injected: wait on
        }
      }
    }
    closer.join();
    EXPECT(!f.is_open(), "a close from a plain thread left the file open");
  }

  void writer(Target& t, File& f, unsigned w, unsigned writers, Rng r) {
    struct Left {
      Target& t;
      ~Left() { --t.writers_left; }
    } left{t};
    std::vector<unsigned char> buf(t.block);
    for (std::size_t b = w; b < t.written.size(); b += writers) {
      if (r.next() % 4 == 0) continue;  // a hole
      const std::uint64_t off = b * t.block;
      for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = pattern(t.seed, off + i);
      const bool timed = r.next() % 5 == 0;
      const auto timeout =
          timed ? weft::fs::Timeout(std::chrono::microseconds(r.between(0, 500))) : weft::fs::kNoTimeout;
      try {
        if (r.next() % 2) {
          f.write_at(buf.data(), buf.size(), off, timeout);
        } else {
          // Three pieces in one pwritev, continued where it stopped short.
          std::size_t done = 0;
          while (done < buf.size()) {
            const std::size_t a = (buf.size() - done) / 3, c = (buf.size() - done) / 2;
            unsigned char* p = buf.data() + done;
            const iovec iov[3] = {{p, a}, {p + a, c - a}, {p + c, buf.size() - done - c}};
            const std::size_t n = f.writev_at(iov, off + done, timeout);
            EXPECT(n > 0, "writev_at wrote nothing of block " + std::to_string(b) + " of " + t.path);
            done += n;
          }
        }
        t.written[b] = 1;
        ++t.writes;
      } catch (...) {
        if (!failed(t, "File::write_at/writev_at", timed)) return;
      }
      jitter(r);
    }
  }

  void reader(Target& t, File& f, Rng r) {
    std::vector<unsigned char> buf(t.block);
    const long n = weft::test::scaled(static_cast<long>(r.between(10, 40)));
    for (long i = 0; i < n; ++i) {
      std::size_t b;
      while ((b = t.written_from(r.next() % t.written.size())) == std::string::npos) {
        if (t.writers_left == 0) return;  // nothing was written, and nothing will be
        weft::yield();
      }
      const std::uint64_t off = b * t.block;
      const bool timed = r.next() % 5 == 0;
      const auto timeout =
          timed ? weft::fs::Timeout(std::chrono::microseconds(r.between(0, 500))) : weft::fs::kNoTimeout;
      try {
        std::size_t got = 0;
        while (got < buf.size()) {
          std::size_t n1;
          if (r.next() % 3 == 0) {
            const std::size_t h = (buf.size() - got) / 2;
            const iovec iov[2] = {{buf.data() + got, h}, {buf.data() + got + h, buf.size() - got - h}};
            n1 = f.readv_at(iov, off + got, timeout);
          } else {
            n1 = f.read_at(buf.data() + got, buf.size() - got, off + got, timeout);
          }
          EXPECT(n1 > 0, "read_at returned 0 inside written block " + std::to_string(b) + " of " + t.path);
          got += n1;
        }
        check_block(t, b, buf.data(), "read back");
        ++t.reads;
      } catch (...) {
        if (!failed(t, "File::read_at/readv_at", timed)) return;
      }
    }
  }

  void syncer(Target& t, File& f, Rng r) {
    for (int i = 0; i < 4; ++i) {
      jitter(r, 6);
      try {
        switch (r.next() % 3) {
          case 0:
            f.fsync();
            break;
          case 1:
            f.fdatasync();
            break;
          default: {
            const std::uint64_t end = t.written_end();
            const weft::fs::Stat st = f.stat();
            EXPECT(st.size >= end,
                   t.path + " is " + std::to_string(st.size) + " bytes, written to " + std::to_string(end));
          }
        }
      } catch (...) {
        if (!failed(t, "File::fsync/fdatasync/stat", false)) return;
      }
    }
  }

  void verify_all(Target& t, File& f) {
    std::vector<unsigned char> buf(t.block);
    for (std::size_t b = 0; b < t.written.size(); ++b) {
      if (!t.written[b]) continue;
      std::size_t got = 0;
      while (got < buf.size()) {
        const std::size_t n = f.read_at(buf.data() + got, buf.size() - got, b * t.block + got);
        EXPECT(n > 0, "read_at returned 0 inside written block " + std::to_string(b) + " after a move");
        got += n;
      }
      check_block(t, b, buf.data(), "read after a move");
    }
  }

  weft::Runtime& rt_;
  const Run& run_;
  bool interrupted_;
  Rng r_;
  std::string dir_;
  std::vector<std::unique_ptr<Target>> targets_;
  std::vector<weft::JoinHandle<void>> handles_;
};

void body(Run& run) {
  const unsigned workers = 1 + static_cast<unsigned>(run.rng(0).next() % 2);
  const int fds_before = count_fds();
  std::unique_ptr<FilesLoad> load;
  {
    weft::Runtime rt(run.config(workers));
    watch(&rt);
    phase("files: running");
    load = std::make_unique<FilesLoad>(rt, run, false);
    load->start();
    load->finish();
    EXPECT(rt.stats().unjoined_exceptions == 0, "an exception nobody joined");
    note_stats(rt);
    watch(nullptr);
    phase("files: runtime destructor");
  }
  load->check_disk();
  EXPECT(count_fds() == fds_before, std::to_string(count_fds() - fds_before) + " fd(s) left open");
}

}  // namespace
}  // namespace weft::explore::files

namespace weft::explore {
std::unique_ptr<Load> make_files_load(weft::Runtime& rt, const Run& run, bool interrupted) {
  return std::make_unique<files::FilesLoad>(rt, run, interrupted);
}

const Scenario kFiles{"files", "files written, read back, synced and closed at offsets by fibers of their worker",
                      &files::body};
}  // namespace weft::explore
