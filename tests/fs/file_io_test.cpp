// Files read and written at offsets by many fibers at once, byte for byte; the
// syncs; vectored calls; stat; the whole-file helpers. Every case runs on both
// engines (on epoll a regular file's ops run on the Threaded pool); some force the
// File onto the pool on io_uring too, so both paths run under one engine.
#include <fcntl.h>
#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/weft.hpp>

#include "fs_test_support.hpp"

namespace fs = weft::fs;

namespace {

constexpr int kFibers = 64;
constexpr int kBlocksPerFiber = 8;
constexpr std::size_t kBlock = 4096;

// The byte fiber `f` writes at position `i` of its block `b`: differs between
// fibers, blocks and positions, so a misplaced block shows.
char pattern(int f, int b, std::size_t i) {
  return static_cast<char>((f * 131 + b * 17 + static_cast<int>(i) * 7) & 0xff);
}

// Fiber f owns blocks f, f + kFibers, f + 2 kFibers ... (interleaved across the file).
std::uint64_t offset_of(int f, int b) {
  return (static_cast<std::uint64_t>(b) * kFibers + static_cast<std::uint64_t>(f)) * kBlock;
}

void concurrent_round_trip(weft::Engine engine, bool on_pool) {
  weft::test::TempDir dir;
  const std::string path = dir.file("data");
  INFO("engine: " << weft::test::engine_name(engine));
  bool run = true;
  const weft::Config cfg = weft::test::fs_config(engine, &run);
  if (!run) return;
  weft::Runtime rt(cfg);
  int bad = 0;
  rt.block_on([&] {
    fs::File f = fs::open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (on_pool) fs::detail::run_on_pool(f);
    std::vector<weft::JoinHandle<void>> fibers;
    for (int i = 0; i < kFibers; ++i) {
      fibers.push_back(weft::spawn([&f, &bad, i] {
        std::vector<char> buf(kBlock);
        for (int b = 0; b < kBlocksPerFiber; ++b) {
          for (std::size_t k = 0; k < kBlock; ++k) buf[k] = pattern(i, b, k);
          f.write_at(buf.data(), buf.size(), offset_of(i, b));
          weft::yield();
        }
        for (int b = kBlocksPerFiber - 1; b >= 0; --b) {
          std::vector<char> got(kBlock);
          if (f.read_at(got.data(), got.size(), offset_of(i, b)) != kBlock) ++bad;
          for (std::size_t k = 0; k < kBlock; ++k)
            if (got[k] != pattern(i, b, k)) ++bad;
        }
      }));
    }
    for (auto& h : fibers) h.join();
    CHECK(f.stat().size == kFibers * kBlocksPerFiber * kBlock);
    f.close();
  });
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("64 fibers write their own blocks at their own offsets and read back exactly those bytes") {
  concurrent_round_trip(WEFT_FS_ENGINE(), false);
}

TEST_CASE("the same 64 fibers on the Threaded pool path get the same bytes") {
  concurrent_round_trip(WEFT_FS_ENGINE(), true);
}

TEST_CASE("fsync and fdatasync succeed on a written file, on both paths") {
  weft::test::TempDir dir;
  WEFT_FS_CASE(cfg, 1);
  weft::Runtime rt(cfg);
  rt.block_on([&] {
    for (bool on_pool : {false, true}) {
      fs::File f = fs::open(dir.file(on_pool ? "pool" : "ring"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (on_pool) fs::detail::run_on_pool(f);
      f.write_at("durable", 7, 0);
      f.fsync();
      f.write_at("!", 1, 7);
      f.fdatasync();
      f.close();
      CHECK(fs::read_file(dir.file(on_pool ? "pool" : "ring")) == "durable!");
    }
  });
}

TEST_CASE("readv_at and writev_at move bytes across several buffers at an offset") {
  weft::test::TempDir dir;
  WEFT_FS_CASE(cfg, 1);
  weft::Runtime rt(cfg);
  rt.block_on([&] {
    fs::File f = fs::open(dir.file("v"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    char a[] = "hello, ", b[] = "vectored ", c[] = "world";
    const iovec out[] = {{a, 7}, {b, 9}, {c, 5}};
    CHECK(f.writev_at(out, 100) == 21);
    char x[5], y[16];
    const iovec in[] = {{x, sizeof x}, {y, sizeof y}};
    CHECK(f.readv_at(in, 100) == 21);
    CHECK(std::string(x, 5) + std::string(y, 16) == "hello, vectored world");
    const fs::Stat st = f.stat();
    CHECK(st.size == 121);
    CHECK(st.is_regular());
    CHECK(f.read_at(y, sizeof y, 121) == 0);  // past the end
  });
}

TEST_CASE("write_file then read_file returns the same bytes, large and empty alike") {
  weft::test::TempDir dir;
  WEFT_FS_CASE(cfg, 1);
  weft::Runtime rt(cfg);
  rt.block_on([&] {
    std::string big(3 * 1024 * 1024 + 17, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 2654435761u >> 24);
    fs::write_file(dir.file("big"), big);
    CHECK(fs::read_file(dir.file("big")) == big);
    CHECK(fs::stat(dir.file("big")).size == big.size());
    fs::write_file(dir.file("big"), "");  // truncates
    CHECK(fs::read_file(dir.file("big")).empty());
    CHECK(fs::stat(dir.path()).is_directory());
  });
}

TEST_CASE("on the pool path a call whose deadline has passed fails with timed_out before it runs") {
  weft::test::TempDir dir;
  const std::string path = dir.file("late");
  WEFT_FS_CASE(cfg, 1);
  weft::Runtime rt(cfg);
  rt.block_on([&] {
    fs::File f = fs::open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    fs::detail::run_on_pool(f);
    weft::test::require_fs_error([&] { f.write_at("x", 1, 0, std::chrono::nanoseconds(0)); }, std::errc::timed_out,
                                 path, "timeout expired");
    CHECK(f.stat().size == 0);  // nothing was written
    f.write_at("y", 1, 0);      // and the file is still usable
    CHECK(f.stat().size == 1);
  });
}
