// A FIFO nobody writes to is a file whose reads wait: it shows the deadline, the
// cancellation and the close of pending reads (ring: a linked timeout and a cancel
// by fd; epoll: a readiness wait; every case runs on both). Opened O_RDWR, so the
// open itself never waits for a writer and the test can feed the FIFO itself.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/weft.hpp>

#include "fs_test_support.hpp"

using namespace std::chrono_literals;
namespace fs = weft::fs;

namespace {

// On worker 0 of `rt`: opens the FIFO at `path` into `f` and leaves a detached
// fiber parked in a read of it (whatever that read ends with). Returns the fd.
int open_with_parked_reader(weft::Runtime& rt, const std::string& path, std::optional<fs::File>& f) {
  int fd = -1;
  rt.spawn_on(0, [&] {
      f.emplace(fs::open(path, O_RDWR));
      fd = f->fd();
      weft::spawn(
          [&f] {
            char c;
            try {
              (void)f->read_at(&c, 1, 0);
            } catch (const std::system_error&) {
            }
          },
          {.name = "reader", .launch = weft::Launch::dispatch})  // parked in its read on return
          .detach();
    }).join();
  return fd;
}

}  // namespace

TEST_CASE("a read past its deadline fails with timed_out and leaves the file usable") {
  weft::test::TempDir dir;
  const std::string path = dir.fifo("quiet");
  WEFT_FS_CASE(cfg, 1);
  weft::Runtime rt(cfg);
  rt.block_on([&] {
    fs::File f = fs::open(path, O_RDWR);
    char c = 0;
    weft::test::require_fs_error([&] { (void)f.read_at(&c, 1, 0, 20ms); }, std::errc::timed_out, path,
                                 "timeout expired");
    CHECK(f.is_open());
    f.write_at("x", 1, 0);
    CHECK(f.read_at(&c, 1, 0, 10s) == 1);
    CHECK(c == 'x');
    f.close();
  });
}

TEST_CASE("close while reads are pending ends each of them with the closed error, then closes the fd") {
  weft::test::TempDir dir;
  const std::string path = dir.fifo("pending");
  WEFT_FS_CASE(cfg, 1);
  weft::Runtime rt(cfg);
  rt.block_on([&] {
    fs::File f = fs::open(path, O_RDWR);
    const int fd = f.fd();
    constexpr int kReaders = 6;
    int closed = 0, other = 0;
    std::string first_other;
    std::vector<weft::JoinHandle<void>> readers;
    for (int i = 0; i < kReaders; ++i) {
      readers.push_back(weft::spawn(
          [&] {
            char c;
            try {
              (void)f.read_at(&c, 1, 0);
              ++other;
            } catch (const std::system_error& e) {
              if (e.code() == std::errc::operation_canceled && std::string(e.what()).find(path) != std::string::npos)
                ++closed;
              else if (other++ == 0)
                first_other = e.what();
            }
          },
          {.name = "reader", .launch = weft::Launch::dispatch}));  // parked in its read on return
    }
    f.close();
    CHECK_FALSE(f.is_open());
    CHECK(weft::test::fd_closed(fd));
    for (auto& h : readers) h.join();
    INFO("first unexpected outcome: " << first_other);
    CHECK(closed == kReaders);
    CHECK(other == 0);
    weft::test::require_fs_error([&] { (void)f.read_at(nullptr, 0, 0); }, std::errc::bad_file_descriptor, path,
                                 "the file is closed");
  });
}

TEST_CASE("a fiber cancelled while its read waits gets FiberCancelled and the file stays open") {
  weft::test::TempDir dir;
  const std::string path = dir.fifo("cancel");
  WEFT_FS_CASE(cfg, 1);
  weft::Runtime rt(cfg);
  rt.block_on([&] {
    fs::File f = fs::open(path, O_RDWR);
    auto h = weft::spawn(
        [&] {
          char c;
          (void)f.read_at(&c, 1, 0);
        },
        {.name = "reader", .launch = weft::Launch::dispatch});
    h.cancel();
    CHECK_THROWS_AS(h.join(), weft::FiberCancelled);
    CHECK(f.is_open());
    f.close();
  });
}

TEST_CASE("close from another worker's fiber while reads are pending is handed to the owner and ends them") {
  weft::test::TempDir dir;
  const std::string path = dir.fifo("elsewhere");
  WEFT_FS_CASE(cfg, 2);
  cfg.placement = weft::Placement::local;  // the readers start on the opener's worker
  weft::Runtime rt(cfg);
  std::optional<fs::File> f;
  int fd = -1;
  int closed = 0;
  std::vector<weft::JoinHandle<void>> readers;
  rt.spawn_on(0, [&] {
      f.emplace(fs::open(path, O_RDWR));
      fd = f->fd();
      for (int i = 0; i < 3; ++i) {
        readers.push_back(weft::spawn(
            [&] {
              char c;
              try {
                (void)f->read_at(&c, 1, 0);  // the first one claims the File for worker 0
              } catch (const std::system_error& e) {
                if (e.code() == std::errc::operation_canceled) ++closed;
              }
            },
            {.name = "reader", .launch = weft::Launch::dispatch}));
      }
    }).join();
  rt.spawn_on(1, [&] { f->close(); }).join();
  CHECK_FALSE(f->is_open());
  CHECK(weft::test::fd_closed(fd));
  rt.spawn_on(0, [&] {
      for (auto& h : readers) h.join();
    }).join();
  CHECK(closed == 3);
}

TEST_CASE("a Timer callback closes a file while a fiber of its worker reads it") {
  weft::test::TempDir dir;
  const std::string path = dir.fifo("timer");
  WEFT_FS_CASE(cfg, 1);
  int fd = -1;
  std::error_code ec;
  bool returned = false;
  {
    weft::Runtime rt(cfg);
    rt.block_on([&] {
      fs::File f = fs::open(path, O_RDWR);
      fd = f.fd();
      // The callback runs in the worker's scheduler context: it cannot wait, so the
      // close is handed to a fiber and the callback returns at once.
      weft::Timer t([&] { f.close(); });
      t.arm(1ms);
      char c;
      try {
        (void)f.read_at(&c, 1, 0);
        returned = true;
      } catch (const std::system_error& e) {
        ec = e.code();
      }
      CHECK_FALSE(f.is_open());
    });
  }  // the handed close has run: the runtime finished its fibers
  INFO(ec.message());
  CHECK_FALSE(returned);
  CHECK(ec == std::errc::operation_canceled);
  CHECK(weft::test::fd_closed(fd));
}

TEST_CASE("a close handed from a thread to a stopping runtime still closes the fd, at its worker's exit") {
  weft::test::TempDir dir;
  const std::string path = dir.fifo("stopping");
  WEFT_FS_CASE(cfg, 1);
  int fd = -1;
  {
    auto rt = std::make_unique<weft::Runtime>(cfg);
    std::optional<fs::File> f;
    fd = open_with_parked_reader(*rt, path, f);
    // The worker is held by a fiber that never yields while a thread's close() is
    // handed to it and the runtime is told to stop: once the fiber ends, the stop
    // cancels everything first, so the handed fiber is cancelled before it runs,
    // with the reader's op still pending. (The sleeps only make that order likely.)
    std::atomic<bool> holding{false}, go{false};
    auto holder = rt->spawn_on(0, [&] {
      holding = true;
      while (!go.load()) std::this_thread::yield();
    });
    while (!holding.load()) std::this_thread::yield();  // a fiber not yet run would just be cancelled
    std::thread closer([&] { f->close(); });
    std::this_thread::sleep_for(100ms);
    std::thread stopper([&] { rt->shutdown(); });
    std::this_thread::sleep_for(100ms);
    go = true;
    stopper.join();
    closer.join();
    holder.join();
    CHECK_FALSE(f->is_open());
  }
  CHECK(weft::test::fd_closed(fd));
}

TEST_CASE("a file its runtime outlived is closed by the thread that drops it") {
  weft::test::TempDir dir;
  const std::string path = dir.fifo("outlived");
  WEFT_FS_CASE(cfg, 1);
  std::optional<fs::File> f;
  int fd = -1;
  {
    weft::Runtime rt(cfg);
    rt.spawn_on(0, [&] {
        f.emplace(fs::open(path, O_RDWR));  // the move into f releases it
        fd = f->fd();
        const char c = 'x';
        f->write_at(&c, 1, 0);  // a call claims it again: owned by worker 0 from here on
      }).join();
  }
  f.reset();  // its worker's thread is gone: nothing can be pending, closed here
  CHECK(weft::test::fd_closed(fd));
}

TEST_CASE("a close from a thread that the stopping runtime refuses leaves the fd to its worker's exit") {
  weft::test::TempDir dir;
  const std::string path = dir.fifo("refused");
  WEFT_FS_CASE(cfg, 1);
  auto rt = std::make_unique<weft::Runtime>(cfg);
  std::optional<fs::File> f;
  const int fd = open_with_parked_reader(*rt, path, f);
  // A fiber that never yields holds the worker while the runtime is told to stop,
  // until a spawn is refused: the close's hand-over is then refused too.
  std::atomic<bool> holding{false}, go{false};
  auto holder = rt->spawn_on(0, [&] {
    holding = true;
    while (!go.load()) std::this_thread::yield();
  });
  while (!holding.load()) std::this_thread::yield();  // a fiber not yet run would just be cancelled
  std::thread stopper([&] { rt->shutdown(); });
  weft::test::wait_until_spawns_refused(*rt);
  f->close();
  CHECK_FALSE(f->is_open());
  CHECK(::fcntl(fd, F_GETFD) != -1);  // the reader's op may still name it: not closed yet
  go = true;
  stopper.join();
  holder.join();
  rt.reset();  // the worker's thread exits: no op is in flight, the fd is closed
  CHECK(weft::test::fd_closed(fd));
}
