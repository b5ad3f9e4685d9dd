// accept() out of file descriptors (EMFILE): the listener logs once, backs off
// (no busy loop), keeps serving, and accepts again once fds are free. Runs in a
// child process whose RLIMIT_NOFILE is lowered to just above its open fds.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "net_test_support.hpp"

using namespace std::chrono_literals;
using weft::net::TcpListener;
using weft::net::TcpStream;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

int highest_fd() {
  int hi = 2;
  for (int fd = 0; fd < 4096; ++fd)
    if (fcntl(fd, F_GETFD) != -1) hi = fd;
  return hi;
}

int child_body() {
  weft::Runtime rt;
  return rt.block_on([&]() -> int {
    TcpListener l = weft::test::loopback_listener();
    long served = 0;
    auto server = weft::spawn([&] {
      for (;;) {
        TcpStream s = l.accept();
        char b;
        s.read_exact(&b, 1, 10s);
        s.write_all(&b, 1);
        ++served;
      }
    });
    weft::yield();  // the server is now waiting in accept
    // Leave exactly one fd number free under the limit: the client takes it, so
    // the server's accept hits EMFILE.
    rlimit r{};
    getrlimit(RLIMIT_NOFILE, &r);
    r.rlim_cur = static_cast<rlim_t>(highest_fd() + 1 + 8);
    if (setrlimit(RLIMIT_NOFILE, &r) != 0) return 10;
    std::vector<int> fillers;
    for (int fd; (fd = dup(0)) >= 0;) fillers.push_back(fd);
    if (fillers.empty()) return 11;
    close(fillers.back());
    fillers.pop_back();
    TcpStream c = TcpStream::connect(l.local_address(), 5s);  // completes in the backlog
    const auto sqes0 = rt.stats().sqes_submitted;
    weft::sleep_for(200ms);  // the server keeps failing with EMFILE and backing off
    const auto sqes = rt.stats().sqes_submitted - sqes0;
    if (served != 0) return 12;
    // A busy loop would submit thousands of accepts here; the back-off a handful.
    if (sqes > 200) {
      std::printf("busy loop: %llu SQEs in the EMFILE window\n", static_cast<unsigned long long>(sqes));
      return 13;
    }
    for (int fd : fillers) close(fd);
    c.write_all("x", 1);
    char b = 0;
    c.read_exact(&b, 1, 10s);  // served once fds are free
    if (b != 'x' || served != 1) return 14;
    for (int i = 0; i < 3; ++i) {  // and it keeps serving
      TcpStream more = TcpStream::connect(l.local_address(), 5s);
      more.write_all("y", 1);
      more.read_exact(&b, 1, 10s);
      if (b != 'y') return 15;
    }
    if (served != 4) return 16;
    l.close();  // the server's pending accept is cancelled
    try {
      server.join();
    } catch (const std::system_error& e) {
      if (e.code() != std::errc::operation_canceled) return 17;
    }
    return 0;
  });
}
}  // namespace

TEST_CASE("accept under EMFILE logs once, backs off, and keeps serving after fds free up") {
  auto r = weft::test::run_in_child([] {
    try {
      return child_body();
    } catch (const std::exception& e) {
      std::printf("child failed: %s\n", e.what());
      return 20;
    }
  });
  INFO(r.output);
  REQUIRE(r.exited);
  REQUIRE(r.exit_code == 0);
  std::size_t logs = 0;
  for (std::size_t at = 0; (at = r.output.find("out of file descriptors", at)) != std::string::npos; ++at) ++logs;
  REQUIRE(logs == 1);
}
