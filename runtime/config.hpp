// weft/runtime/config.hpp — everything a Runtime can be told at construction.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace weft {

/// How fiber stacks get their guard pages.
enum class GuardMode : std::uint8_t {
  automatic,  ///< madvise where the kernel has MADV_GUARD_INSTALL, else mprotect
  madvise,    ///< require MADV_GUARD_INSTALL (startup error if the kernel lacks it)
  mprotect,   ///< force the mprotect fallback (2 mappings per stack, budgeted)
};

/// How a thread wakes a sleeping worker after handing it a fiber.
enum class WakeMode : std::uint8_t {
  eventfd,   ///< write(2) to the worker's eventfd (a read op on its ring completes)
  msg_ring,  ///< from another worker: IORING_OP_MSG_RING on the waker's own ring;
             ///< from other threads (and on kernels without it): eventfd
};

/// Which I/O engine the workers run (docs/deployment.md).
enum class Engine : std::uint8_t {
  automatic,  ///< io_uring; epoll when io_uring cannot be set up here (seccomp, sysctl,
              ///< memlock, an old kernel, a missing opcode) or under valgrind, with
              ///< one log line naming the cause and the remedy
  io_uring,   ///< io_uring or a StartupError saying why not
  epoll,      ///< epoll: readiness and non-blocking syscalls; file I/O on the pool
};

/// Where spawn() without a worker puts a new fiber (spawn_on always obeys).
enum class Placement : std::uint8_t {
  local,         ///< a fiber's children on its own worker (no handoff); spawns from
                 ///< outside the runtime round-robin over the workers
  round_robin,   ///< every spawn: the next worker in turn
  least_loaded,  ///< every spawn: the worker with the fewest live + incoming fibers
};

/// Test-only: the schedule and fault explorer (runtime/uring/explorer.hpp,
/// tools/explore). A seed of 0, the default, turns it off.
struct Explore {
  std::uint64_t seed = 0;
  /// Per 1000 yield points (a fiber leaving a park, entering a socket op or a
  /// close), how many yield to the other ready fibers first.
  unsigned yields = 0;
  /// Per 1000 fault points (an op issued, a CQE reaped, SQ room asked for, memory
  /// taken in a fiber), how many fault: a short transfer, an errno instead of the
  /// op, a CQE held back a few ticks, a full SQ, a refused submit, ENOMEM.
  unsigned faults = 0;
  /// Which faults (bits of Fault); all by default.
  enum Fault : std::uint32_t {
    short_transfer = 1u << 0,  ///< a stream read/write moves fewer bytes
    fail_op = 1u << 1,         ///< an op ends with an errno without being issued
    hold_cqe = 1u << 2,        ///< a CQE is delivered a few ticks late
    sq_full = 1u << 3,         ///< the SQ has no room
    refuse_submit = 1u << 4,   ///< an enter is refused with -EBUSY (reap first)
    enomem = 1u << 5,          ///< memory taken in fiber context fails
    fail_wake = 1u << 6,       ///< a MSG_RING wake to another worker fails
  };
  std::uint32_t kinds = ~0u;
};

struct Config {
  /// Name used in thread names ("<name>-w0") and logs.
  std::string name = "weft";
  /// The I/O engine; the environment variable WEFT_ENGINE (auto, io_uring or
  /// epoll) overrides it.
  Engine engine = Engine::automatic;
  /// Evented worker threads, each with its own io_uring (or epoll set). New fibers are spread
  /// over them by `placement`; a fiber never moves to another worker.
  unsigned workers = 1;
  /// Usable bytes per fiber stack (rounded up to pages); memory is committed lazily.
  std::size_t stack_size = 64 * 1024;
  /// Guard pages under every stack. They cost address space only (never a mapping
  /// in madvise mode), so more than one catches frames bigger than a page.
  unsigned guard_pages = 1;
  GuardMode guard_mode = GuardMode::automatic;
  /// mprotect fallback only: live guarded stacks allowed (2 mappings each).
  std::size_t mprotect_guard_budget = 16384;
  /// Free stacks per worker kept committed; beyond that their pages are returned.
  std::size_t stack_cache = 128;
  /// Submission queue entries per ring, 1..32768 (the kernel's limit; the
  /// Runtime constructor refuses anything else with std::invalid_argument). The
  /// completion queue is 4x, at most the kernel's 65536.
  unsigned ring_entries = 256;
  /// Fiber activations a worker runs before it reaps completions and timers, when
  /// fewer fibers are ready. When more are ready as a tick begins, each of them
  /// runs once first (up to 16 x tick_budget): a batch of completions is served
  /// before the ring is entered again.
  unsigned tick_budget = 64;
  /// A fiber running longer than this without yielding is reported by name.
  /// Zero disables the stall detector.
  std::chrono::milliseconds stall_threshold{100};
  /// A signal (e.g. SIGUSR2) on which every runtime logs a fiber dump at warn
  /// level; 0 installs no handler (the default: the embedding server owns its
  /// signals).
  int dump_signal = 0;
  /// Ask the kernel for SINGLE_ISSUER|DEFER_TASKRUN (falls back when refused).
  bool defer_taskrun = true;
  /// Threads of the runtime's own ThreadPool (weft::offload(fn) without a pool);
  /// 0: max(2, cores). The pool starts at the first offload.
  unsigned pool_threads = 0;
  /// Bounded queue of that pool: a full queue parks the offloading fiber.
  std::size_t pool_queue = 1024;
  /// Placement of new fibers. Fibers never migrate (no work stealing), so a
  /// server whose acceptor spawns the connections needs them spread: measured
  /// in docs/measurements/placement.md.
  Placement placement = Placement::round_robin;
  /// Cross-worker wake mechanism (measured: see docs/measurements/cross-worker-wake.md).
  WakeMode wake = WakeMode::msg_ring;
  /// Slots of each worker's registered-file table: a socket in use on a worker is
  /// installed there and its ops name the slot, sparing the kernel an fd lookup
  /// and a reference count per op (docs/measurements/fixed-files.md). Sockets beyond
  /// the table use their fd. Capped by RLIMIT_NOFILE; 0 turns the table off.
  unsigned fixed_files = 4096;
  /// The provided-buffer ring of each worker, made at the first
  /// TcpStream::read_buffer() there: that many buffers (a power of two, at most
  /// 32768; 0 turns buffered reads into plain ones) of `recv_buffer_size` bytes,
  /// mapped lazily (pages are committed as the kernel first fills them).
  /// 256 x 16 KiB: the kernel takes the ring's buffers in turn, so a bigger ring
  /// cycles more memory through the cache (1024 cost 3% CPU per request at 64 echo
  /// connections, docs/measurements/buffered-reads.md); a ring that runs dry only
  /// makes reads fall back to plain receives until buffers come back. Other
  /// values make the Runtime's constructor throw std::invalid_argument.
  unsigned recv_buffers = 256;
  unsigned recv_buffer_size = 16384;
  /// Test-only (tools/explore): random schedules and injected faults from a seed.
  Explore explore{};
};

}  // namespace weft
