// Why a net call's op ended comes from the op's own CQEs (runtime/uring/op_table.hpp,
// OpEnd), mapped to the error model in one place (net/error.cpp, failure_of): a
// read whose linked timeout fired throws timed_out; one that a cancel or a close
// ended first throws what ended it, operation_canceled, although it had a deadline.
// No clock decides it.
#include <liburing.h>

#include <chrono>
#include <string>
#include <system_error>

#include <catch2/catch.hpp>

#include <weft/net/tcp_listener.hpp>
#include <weft/net/tcp_stream.hpp>
#include <weft/runtime/io_op.hpp>
#include <weft/runtime/uring/ops.hpp>
#include <weft/runtime/uring/worker.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"
#include "net_test_support.hpp"

using namespace std::chrono_literals;
using weft::net::TcpListener;
using weft::net::TcpStream;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

// One worker: the fibers below share its ring, so a cancel by fd finds the read.
weft::Config one_worker() {
  weft::Config cfg;
  cfg.workers = 1;
  return cfg;
}

void prep_cancel_fd(io_uring_sqe* sqe, void* fd) {
  io_uring_prep_cancel_fd(sqe, *static_cast<int*>(fd), IORING_ASYNC_CANCEL_ALL);
}

// What `call` threw: its code and what(); an empty code if it returned.
template <class F>
std::system_error thrown_by(F&& call) {
  try {
    call();
  } catch (const std::system_error& e) {
    return e;
  }
  return std::system_error(std::error_code(), "returned");
}
}  // namespace

TEST_CASE("a read whose linked timeout fired throws timed_out, also with a timeout of zero") {
  weft::test::on_loopback_connection([](TcpListener&, TcpStream&, TcpStream& s) {
    char b[1];
    for (const weft::net::Timeout t : {weft::net::Timeout(0s), weft::net::Timeout(1ms)}) {
      const std::system_error e = thrown_by([&] { s.read_some(b, 1, t); });
      INFO(e.what());
      REQUIRE(e.code() == std::errc::timed_out);
    }
  });
}

TEST_CASE("a read with a deadline that a cancel by fd ended first throws operation_canceled, not timed_out") {
  weft::Runtime rt(one_worker());
  const bool epoll = rt.stats().engine == weft::Engine::epoll;
  weft::test::on_loopback_connection(rt, [epoll](TcpListener&, TcpStream&, TcpStream& s) {
    // Runs once the read is parked; its cancel reaches the kernel after the read.
    // On epoll there is no ring to submit a raw cancel to (submit_raw is an io_uring
    // hook): the engine's own cancel by fd wakes the parked reader the same way.
    auto canceller = weft::spawn([&s, epoll] {
      int fd = s.native_handle();
      if (epoll)
        (void)weft::detail::await_io(weft::detail::t_state.worker,
                                     weft::detail::IoOp::on_fd(weft::detail::IoKind::cancel_fd, fd));
      else
        weft::detail::t_state.worker->submit_raw(&prep_cancel_fd, &fd, weft::detail::kTagIgnore);
    });
    char b[1];
    const std::system_error e = thrown_by([&] { s.read_some(b, 1, std::chrono::hours(1)); });
    canceller.join();
    INFO(e.what());
    REQUIRE(e.code() == std::errc::operation_canceled);
  });
}

TEST_CASE("a read with a deadline pending when another fiber closes its socket throws the close's error") {
  weft::Runtime rt(one_worker());
  weft::test::on_loopback_connection(rt, [](TcpListener&, TcpStream&, TcpStream& s) {
    auto closer = weft::spawn([&s] { s.close(); });  // runs once the read is parked
    char b[1];
    const std::system_error e = thrown_by([&] { s.read_some(b, 1, std::chrono::hours(1)); });
    closer.join();
    INFO(e.what());
    REQUIRE(e.code() == std::errc::operation_canceled);
    REQUIRE(std::string(e.what()).find("closed while the operation was pending") != std::string::npos);
  });
}
