// tests/fs/fs_test_support.hpp — what the fs tests share: the engines each case
// runs on, a scratch directory removed at the end, a FIFO in it, and the check
// that an error is the std::system_error the model promises (its code, and
// what() naming the path).
//
// Invariants: every case runs once per engine (WEFT_FS_ENGINE()); where io_uring
// cannot be set up its run is left out with a warning, the epoll run stays. Every
// path a test touches is inside its TempDir; a missing facility (no temporary
// directory, no mkfifo) skips the binary (exit 77).
#pragma once

#include <liburing.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <system_error>

#include <catch2/catch.hpp>

#include <weft/runtime/config.hpp>

#include "../helpers/test_support.hpp"

/// The engine of this run of the test case: io_uring, then epoll (a Catch2
/// generator, so it is used in a TEST_CASE's body).
#define WEFT_FS_ENGINE() GENERATE(weft::Engine::io_uring, weft::Engine::epoll)

/// The opening of a test case run once per engine: declares `engine` (this run's,
/// named in the case's messages) and `cfg`, a Config on it with `workers`
/// workers; ends the run where that engine cannot run here.
#define WEFT_FS_CASE(cfg, workers)                                            \
  const weft::Engine engine = WEFT_FS_ENGINE();                               \
  INFO("engine: " << weft::test::engine_name(engine));                        \
  bool fs_case_runs = true;                                                   \
  weft::Config cfg = weft::test::fs_config(engine, &fs_case_runs, (workers)); \
  if (!fs_case_runs) return

namespace weft::test {

/// True when an io_uring can be set up here.
inline bool io_uring_works() {
  io_uring ring;
  if (io_uring_queue_init(4, &ring, 0) < 0) return false;
  io_uring_queue_exit(&ring);
  return true;
}

/// The Config of a test's Runtime on `engine`; false in `*run` when that engine
/// cannot run here (io_uring refused), after saying so.
inline weft::Config fs_config(weft::Engine engine, bool* run, unsigned workers = 1) {
  weft::Config cfg;
  cfg.engine = engine;
  cfg.workers = workers;
  *run = engine != weft::Engine::io_uring || io_uring_works();
  if (!*run) WARN("io_uring cannot be set up here: only the epoll run of this case");
  return cfg;
}

inline const char* engine_name(weft::Engine e) {
  return e == weft::Engine::epoll ? "epoll" : "io_uring";
}

/// A fresh directory under the system's temporary directory, removed with all it
/// holds when the object goes.
class TempDir {
 public:
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "weft-fs-XXXXXX").string();
    if (!::mkdtemp(t.data())) skip("no temporary directory: mkdtemp failed");
    path_ = t;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }
  [[nodiscard]] const std::string& path() const { return path_; }
  /// A FIFO named `name` in the directory.
  [[nodiscard]] std::string fifo(const std::string& name) const {
    const std::string p = file(name);
    if (::mkfifo(p.c_str(), 0600) != 0) skip("mkfifo refused here");
    return p;
  }

 private:
  std::string path_;
};

/// Runs `fn`, which must throw std::system_error with `code` and a what() that
/// names `path` and contains `words`.
template <class F>
void require_fs_error(F&& fn, std::errc code, const std::string& path, const std::string& words = "") {
  try {
    fn();
    FAIL("no exception; expected " << std::make_error_code(code).message() << " naming " << path);
  } catch (const std::system_error& e) {
    INFO("what(): " << e.what());
    CHECK(e.code() == code);
    CHECK(std::string(e.what()).find(path) != std::string::npos);
    CHECK(std::string(e.what()).find(words) != std::string::npos);
  }
}

}  // namespace weft::test
