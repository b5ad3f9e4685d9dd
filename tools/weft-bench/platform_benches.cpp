// weft-bench: what the host charges for entering the kernel — the figure that
// decides how far an io_uring server (one io_uring_enter per batch) pulls ahead
// of a readiness server (a read and a write per request) on a given machine
// (docs/measurements/kernel-entry-cost.md).
//   kernel_entry  N getppid() system calls (ns per call; the
//                 cheapest entry there is), then N io_uring_enter calls that
//                 submit and wait for nothing on a private ring
//                 (enter_ns=..., the floor of one scheduler tick's enter).
//
// Invariants: the calls run on one thread of the runtime's pool while the fiber
// that asked waits parked; the private ring is that thread's own and is torn
// down before it returns.
#include <liburing.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include <weft/runtime/threaded/offload.hpp>

#include "bench.hpp"

namespace weft_bench {
namespace {

// On a plain thread of the runtime's pool (weft::offload): a second of system
// calls in the calling fiber would hold its worker that long (and be reported
// as a stall).
Result measure_kernel_entry(long n) {
  long sink = 0;
  const long long t0 = now_ns();
  for (long i = 0; i < n; ++i) {
    sink += syscall(SYS_getppid);
  }
  const long long t1 = now_ns();
  if (sink != static_cast<long>(getppid()) * n) fail("kernel_entry: getppid() changed under the loop");

  io_uring ring;
  const int r = io_uring_queue_init(8, &ring, 0);
  if (r < 0) fail(std::string("kernel_entry: io_uring_queue_init: ") + std::strerror(-r));
  const long long e0 = now_ns();
  for (long i = 0; i < n; ++i) {
    const int e = io_uring_enter(ring.ring_fd, 0, 0, IORING_ENTER_GETEVENTS, nullptr);
    if (e < 0) {
      io_uring_queue_exit(&ring);
      fail(std::string("kernel_entry: io_uring_enter: ") + std::strerror(-e));
    }
  }
  const long long e1 = now_ns();
  io_uring_queue_exit(&ring);
  const double enter_ns = static_cast<double>(e1 - e0) / static_cast<double>(n);
  return {static_cast<double>(n), t1 - t0, " enter_ns=" + std::to_string(static_cast<long>(enter_ns + 0.5))};
}

Result bench_kernel_entry(weft::Runtime&, const Args&, long n) {
  return weft::offload([n] { return measure_kernel_entry(n); });
}

Registrar r_kernel_entry{{"kernel_entry", 1, 1000000, bench_kernel_entry, "",
                          "kernel_entry  N getppid() calls (ns per call) and N empty io_uring_enter calls "
                          "(enter_ns): the host's price of a kernel entry"}};

}  // namespace
}  // namespace weft_bench
