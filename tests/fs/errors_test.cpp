// The error model of fs/ (fs/error.hpp): kernel errors come out as
// std::system_error with the errno as code and what() naming the call and the
// path; a closed File says so; callers outside the owner worker's fibers are
// refused with CrossRuntimeError before anything is touched. Every case runs on
// both engines.
#include <fcntl.h>

#include <optional>
#include <string>
#include <system_error>

#include <catch2/catch.hpp>

#include <weft/weft.hpp>

#include "fs_test_support.hpp"

namespace fs = weft::fs;
using weft::test::require_fs_error;

TEST_CASE("opening a missing path fails with ENOENT naming the call and the path") {
  weft::test::TempDir dir;
  const std::string missing = dir.file("no/such/file");
  WEFT_FS_CASE(cfg, 1);
  weft::Runtime rt(cfg);
  rt.block_on([&] {
    require_fs_error([&] { (void)fs::open(missing, O_RDONLY); }, std::errc::no_such_file_or_directory, missing,
                     "weft::fs::open: ");
    require_fs_error([&] { (void)fs::read_file(missing); }, std::errc::no_such_file_or_directory, missing);
    require_fs_error([&] { (void)fs::stat(missing); }, std::errc::no_such_file_or_directory, missing,
                     "weft::fs::stat: ");
  });
}

TEST_CASE("a directory opened for writing, or read, fails with EISDIR naming the path") {
  weft::test::TempDir dir;
  WEFT_FS_CASE(cfg, 1);
  weft::Runtime rt(cfg);
  rt.block_on([&] {
    require_fs_error([&] { (void)fs::open(dir.path(), O_RDWR); }, std::errc::is_a_directory, dir.path());
    fs::File d = fs::open(dir.path(), O_RDONLY | O_DIRECTORY);
    char buf[8];
    require_fs_error([&] { (void)d.read_at(buf, sizeof buf, 0); }, std::errc::is_a_directory, dir.path(),
                     "weft::fs::File::read_at: ");
    require_fs_error([&] { (void)fs::read_file(dir.path()); }, std::errc::is_a_directory, dir.path());
  });
}

TEST_CASE("reading a write-only File fails with EBADF, and any call on a closed File too") {
  weft::test::TempDir dir;
  const std::string path = dir.file("w");
  WEFT_FS_CASE(cfg, 1);
  weft::Runtime rt(cfg);
  rt.block_on([&] {
    fs::File f = fs::open(path, O_WRONLY | O_CREAT, 0600);
    f.write_at("abc", 3, 0);
    char buf[3];
    require_fs_error([&] { (void)f.read_at(buf, 3, 0); }, std::errc::bad_file_descriptor, path);
    CHECK(f.is_open());  // the failed read leaves it usable
    f.close();
    f.close();  // idempotent
    require_fs_error([&] { f.write_at("x", 1, 0); }, std::errc::bad_file_descriptor, path, "the file is closed");
    require_fs_error([&] { f.fsync(); }, std::errc::bad_file_descriptor, path, "the file is closed");
    fs::File empty;
    require_fs_error([&] { (void)empty.stat(); }, std::errc::bad_file_descriptor, "(no file)");
  });
}

TEST_CASE("fs calls from a plain thread are refused as not in a fiber") {
  weft::test::TempDir dir;
  const std::string path = dir.file("t");
  CHECK_THROWS_AS(fs::open(path, O_RDWR | O_CREAT, 0600), weft::CrossRuntimeError);
  CHECK_THROWS_AS(fs::read_file(path), weft::CrossRuntimeError);
  WEFT_FS_CASE(cfg, 1);
  weft::Runtime rt(cfg);
  std::optional<fs::File> f;
  rt.block_on([&] {
    f.emplace(fs::open(path, O_RDWR | O_CREAT, 0600));
    (void)f->stat();  // claimed by this worker
  });
  char c;
  CHECK_THROWS_AS(f->read_at(&c, 1, 0), weft::CrossRuntimeError);
  try {
    (void)f->read_at(&c, 1, 0);
  } catch (const weft::CrossRuntimeError& e) {
    CHECK(std::string(e.what()).find("weft::fs::File::read_at") != std::string::npos);
  }
  f->close();  // from this thread: handed to the owner's worker, which closes it
  CHECK_FALSE(f->is_open());
}

TEST_CASE("a File used by a fiber of another worker is refused naming the owner") {
  weft::test::TempDir dir;
  const std::string path = dir.file("w2");
  WEFT_FS_CASE(cfg, 2);
  weft::Runtime rt(cfg);
  std::optional<fs::File> f;
  rt.spawn_on(0, [&] {
      f.emplace(fs::open(path, O_RDWR | O_CREAT, 0600));
      f->write_at("z", 1, 0);  // claimed by worker 0
    }).join();
  std::string what;
  rt.spawn_on(1, [&] {
      char c;
      try {
        (void)f->read_at(&c, 1, 0);
      } catch (const weft::CrossRuntimeError& e) {
        what = e.what();
      }
    }).join();
  INFO("what(): " << what);
  CHECK(what.find("belongs to worker 0") != std::string::npos);
  CHECK(what.find(path) != std::string::npos);
  rt.spawn_on(0, [&] { f->close(); }).join();
}

TEST_CASE("an idle File moved into a fiber of another worker is claimed there and closes there") {
  weft::test::TempDir dir;
  const std::string path = dir.file("moved");
  WEFT_FS_CASE(cfg, 2);
  weft::Runtime rt(cfg);
  std::string got;
  rt.spawn_on(0, [&] {
      fs::File f = fs::open(path, O_RDWR | O_CREAT, 0600);
      f.write_at("moved", 5, 0);  // owned by worker 0
      rt.spawn_on(1, [&got, g = std::move(f)]() mutable {
          char buf[5];
          got.assign(buf, g.read_at(buf, sizeof buf, 0));  // claims it for worker 1
          g.close();
        }).join();
      CHECK_FALSE(f.is_open());  // NOLINT(bugprone-use-after-move): a moved File is empty
    }).join();
  CHECK(got == "moved");
}
