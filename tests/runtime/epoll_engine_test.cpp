// The epoll engine (runtime/epoll/engine.hpp) under IoOps on raw fds: the syscall
// first and a park on readiness only when it would block, registrations kept
// across ops and renewed for a new owner of the fd number, deadlines, the fiber's
// cancellation and cancel_fd, and events of a dropped registration (incident
// 002's rule on this engine). Every runtime here asks for epoll explicitly, so
// these run in the suite's io_uring pass too.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <catch2/catch.hpp>

#include <weft/runtime/epoll/engine.hpp>
#include <weft/runtime/uring/ops.hpp>
#include <weft/runtime/uring/worker.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;
using weft::detail::IoKind;
using weft::detail::IoOp;
using weft::detail::OpEnd;

namespace {

weft::Config epoll_config() {
  weft::Config cfg;
  cfg.engine = weft::Engine::epoll;
  return cfg;
}

// A hang guard, not a timing claim: an op that should complete gets this long.
constexpr auto kGuard = 20s;

OpEnd run_op(IoOp op, weft::detail::OpKind hint = weft::detail::OpKind::other) {
  return weft::detail::await_io(weft::detail::t_state.worker, op, nullptr, hint);
}

OpEnd read_op(int fd, void* buf, std::uint32_t len, std::uint64_t owner, weft::Deadline d = weft::Deadline::none()) {
  IoOp op = IoOp::transfer(IoKind::read, fd, buf, len, 0, d);
  op.offset = IoOp::kCurrentPosition;
  op.owner = owner;
  return run_op(op);
}

void write_byte(int fd, char c) {
  REQUIRE(::write(fd, &c, 1) == 1);
}

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    r = p[0];
    w = p[1];
  }
  ~Pipe() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
};

}  // namespace

TEST_CASE("epoll: a read on an empty pipe parks until a write, a thousand times in a row without a lost wakeup") {
  weft::Runtime rt(epoll_config());
  rt.block_on([] {
    REQUIRE(weft::detail::t_state.worker->engine() == weft::Engine::epoll);
    Pipe p;
    auto reader = weft::spawn([&] {
      for (int i = 0; i < 1000; ++i) {
        char c = 0;
        const OpEnd end = read_op(p.r, &c, 1, 1, weft::Deadline::after(kGuard));
        REQUIRE(end.cause == OpEnd::Cause::completed);
        REQUIRE(end.res == 1);
        REQUIRE(c == static_cast<char>(i));
      }
    });
    for (int i = 0; i < 1000; ++i) {
      weft::yield();  // the reader parks first, most rounds
      write_byte(p.w, static_cast<char>(i));
    }
    reader.join();
  });
}

TEST_CASE("epoll: a read past its deadline ends timed_out and the fd stays usable") {
  weft::Runtime rt(epoll_config());
  rt.block_on([] {
    Pipe p;
    char c = 0;
    const OpEnd end = read_op(p.r, &c, 1, 7, weft::Deadline::after(10ms));
    REQUIRE(end.cause == OpEnd::Cause::timed_out);
    REQUIRE(end.res == -ECANCELED);
    write_byte(p.w, 'x');
    const OpEnd again = read_op(p.r, &c, 1, 7, weft::Deadline::after(kGuard));
    REQUIRE(again.res == 1);
    REQUIRE(c == 'x');
  });
}

TEST_CASE("epoll: a cancelled fiber's read ends cancelled, and nothing stays parked on the fd") {
  weft::Runtime rt(epoll_config());
  rt.block_on([] {
    Pipe p;
    OpEnd seen{};
    auto h = weft::spawn([&] {
      char c;
      seen = read_op(p.r, &c, 1, 3);
    });
    weft::yield();  // it parks on the empty pipe
    h.cancel();
    h.join();
    REQUIRE(seen.cause == OpEnd::Cause::cancelled);
    REQUIRE(seen.res == -ECANCELED);
    REQUIRE(weft::detail::t_state.worker->epoll()->waiting() == 0);
  });
}

TEST_CASE("epoll: cancel_fd ends every op parked on the fd, readers and writers alike") {
  weft::Runtime rt(epoll_config());
  rt.block_on([] {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    // Fill the send buffer, so a writer parks too.
    int small = 4096;
    ::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    ::fcntl(sv[0], F_SETFL, O_NONBLOCK);
    static char junk[65536];
    while (::send(sv[0], junk, sizeof junk, MSG_DONTWAIT) > 0) {
    }
    int ended = 0;
    auto reader = [&] {
      char c;
      const OpEnd e = run_op(IoOp::transfer(IoKind::recv, sv[0], &c, 1, 0, weft::Deadline::none()));
      if (e.cause == OpEnd::Cause::cancelled) ++ended;
    };
    auto writer = [&] {
      IoOp op = IoOp::transfer(IoKind::send, sv[0], junk, sizeof junk, MSG_NOSIGNAL, weft::Deadline::none());
      if (run_op(op).cause == OpEnd::Cause::cancelled) ++ended;
    };
    auto r1 = weft::spawn(reader), r2 = weft::spawn(reader), w1 = weft::spawn(writer);
    weft::yield();
    REQUIRE(weft::detail::t_state.worker->epoll()->waiting() == 3);
    REQUIRE(run_op(IoOp::on_fd(IoKind::cancel_fd, sv[0])).res == 0);
    r1.join();
    r2.join();
    w1.join();
    REQUIRE(ended == 3);
    ::close(sv[0]);
    ::close(sv[1]);
  });
}

TEST_CASE("epoll: a blocking fd is made non-blocking by its first op, so accept never blocks the worker") {
  weft::Runtime rt(epoll_config());
  rt.block_on([] {
    const int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);  // blocking, as a user might hand it over
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(l, 8) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    // The accept parks (nobody connects yet); the connect, another fiber's, wakes it.
    int accepted = -1;
    auto acceptor = weft::spawn([&] {
      IoOp op = IoOp::on_fd(IoKind::accept, l);
      op.flags = SOCK_CLOEXEC;
      op.owner = 11;
      op.deadline = weft::Deadline::after(kGuard);
      accepted = run_op(op).res;
    });
    weft::yield();
    REQUIRE((::fcntl(l, F_GETFL) & O_NONBLOCK) != 0);
    const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    IoOp conn = IoOp::on_fd(IoKind::connect, c);
    conn.buf = &a;
    conn.len = sizeof a;
    conn.owner = 12;
    conn.deadline = weft::Deadline::after(kGuard);
    REQUIRE(run_op(conn).res == 0);
    acceptor.join();
    REQUIRE(accepted >= 0);
    ::close(accepted);
    ::close(c);
    ::close(l);
  });
}

TEST_CASE("epoll: a new owner of an fd number is registered anew, so its read is woken") {
  weft::Runtime rt(epoll_config());
  rt.block_on([] {
    int fd;
    {
      Pipe first;
      write_byte(first.w, 'a');
      char c;
      REQUIRE(read_op(first.r, &c, 1, 21).res == 1);  // registers first.r for owner 21
      fd = first.r;
    }  // closed without forget_fd, as a close on another thread would
    Pipe second;
    REQUIRE(second.r == fd);  // the lowest free number comes back
    OpEnd got{};
    char c = 0;
    auto reader = weft::spawn([&] { got = read_op(second.r, &c, 1, 22, weft::Deadline::after(kGuard)); });
    weft::yield();
    write_byte(second.w, 'b');
    reader.join();
    REQUIRE(got.res == 1);
    REQUIRE(c == 'b');
  });
}

TEST_CASE("incident 002 on epoll: an event of a dropped registration is counted stale and wakes nobody") {
  weft::Runtime rt(epoll_config());
  rt.block_on([&rt] {
    Pipe old_pipe;
    char c;
    write_byte(old_pipe.w, 'a');
    REQUIRE(read_op(old_pipe.r, &c, 1, 31).res == 1);  // registered: (old file, fd)
    const int fd = old_pipe.r;
    const int keep = ::dup(old_pipe.r);  // the old file stays open, so epoll keeps its registration
    ::close(old_pipe.r);
    old_pipe.r = -1;
    Pipe fresh;
    REQUIRE(fresh.r == fd);
    OpEnd got{};
    auto reader = weft::spawn([&] { got = read_op(fresh.r, &c, 1, 32, weft::Deadline::after(kGuard)); });
    weft::yield();  // parked on the new file
    const std::uint64_t stale_before = rt.stats().stale_completions;
    write_byte(old_pipe.w, 'z');  // an event for the old registration only
    weft::sleep_for(5ms);         // several ticks harvest it
    REQUIRE(rt.stats().stale_completions > stale_before);
    write_byte(fresh.w, 'b');
    reader.join();
    REQUIRE(got.res == 1);
    REQUIRE(c == 'b');  // never the old pipe's byte
    ::close(keep);
  });
}

TEST_CASE("epoll: a regular file, which epoll cannot watch, is read by the plain syscall") {
  weft::Runtime rt(epoll_config());
  rt.block_on([] {
    char path[] = "/tmp/weft-epoll-file-XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::unlink(path);
    REQUIRE(::write(fd, "hello", 5) == 5);
    char buf[8] = {};
    IoOp op = IoOp::transfer(IoKind::read, fd, buf, sizeof buf, 0, weft::Deadline::none());
    op.offset = 0;
    op.owner = 41;
    REQUIRE(run_op(op).res == 5);
    REQUIRE(std::string(buf, 5) == "hello");
    ::close(fd);
  });
}

TEST_CASE("epoll: a short read harvested with the peer's FIN still lets the next read see the end of stream") {
  weft::Runtime rt(epoll_config());
  rt.block_on([] {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    OpEnd first{}, second{};
    auto reader = weft::spawn([&] {
      char buf[64];
      auto recv = [&] {
        IoOp op = IoOp::transfer(IoKind::recv, sv[0], buf, sizeof buf, 0, weft::Deadline::after(kGuard));
        op.owner = 51;
        return run_op(op, weft::detail::OpKind::stream_io);
      };
      first = recv();   // parks on the empty socket, then reads the 4 bytes (short)
      second = recv();  // the FIN came in the same event: no new edge will come
    });
    weft::yield();  // the reader parks
    REQUIRE(::write(sv[1], "ping", 4) == 4);
    REQUIRE(::shutdown(sv[1], SHUT_WR) == 0);  // before the tick harvests the data's edge
    reader.join();
    REQUIRE(first.res == 4);
    REQUIRE(second.cause == OpEnd::Cause::completed);
    REQUIRE(second.res == 0);
    ::close(sv[0]);
    ::close(sv[1]);
  });
}
