// weft/runtime/uring/ops.hpp — what net/ asks of the worker a socket lives on,
// without the Worker: io_uring ops for the running fiber, multishot receives on
// the provided-buffer ring, the registered-file table, the ring's probe, starting
// a fiber on a given worker (or refusing a caller of another), and a slot for
// net/'s own per-worker state.
//
// Invariants:
//  - `w` is a live worker. Every call is made on its own thread (those that may
//    park, in fiber context), except remove_file_remote and spawn_on_worker,
//    which any thread may make.
//  - await_op's contract is Worker::await_op's: the op is issued before anything
//    can switch, the fiber resumes only after the op's last CQE, and it throws
//    only bad_alloc, before anything was issued. Its OpEnd says why the op ended,
//    decided from the op's own CQEs (op_table.hpp), never from the clock.
//  - The net slot is set once, by the worker's thread; the worker frees it when it
//    is destroyed and adds its counters into Runtime::stats().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <weft/runtime/config.hpp>
#include <weft/runtime/fiber/fiber.hpp>
#include <weft/runtime/io_op.hpp>
#include <weft/runtime/stats.hpp>
#include <weft/runtime/time.hpp>
#include <weft/runtime/uring/buf_ring.hpp>
#include <weft/runtime/uring/explorer.hpp>
#include <weft/runtime/uring/fixed_files.hpp>
#include <weft/runtime/uring/op_table.hpp>
#include <weft/runtime/uring/ring.hpp>

namespace weft::detail {

// ---- ops for the running fiber (fiber context, on `w`) ----
/// Runs `op` on the worker's engine and returns its result (raw -errno on
/// failure) and why it ended (OpEnd). `cqe_flags` (io_uring only; 0 on epoll) and
/// `hint`, the fault class the explorer may inject into, are optional.
OpEnd await_io(Worker* w, const IoOp& op, std::uint32_t* cqe_flags = nullptr, OpKind hint = OpKind::other);
/// Whether the worker's engine runs ops of kind `k` (false: the caller uses the
/// plain syscall, or the Threaded pool for files).
bool engine_supports(const Worker* w, IoKind k) noexcept;
/// The engine the worker runs (Engine::io_uring or Engine::epoll).
Engine worker_engine(const Worker* w) noexcept;
/// Before close(2) of `fd` held by `owner` (IoOp::owner): the epoll engine drops
/// the fd's registration. The fd's worker's thread; no op may be pending on it.
void forget_fd(Worker* w, int fd, std::uint64_t owner) noexcept;
/// Arms a multishot receive on `fd` (or its registered slot `fixed`) into the
/// provided-buffer ring; CQEs go to `sink(ctx, res, flags)` in scheduler context.
/// Its user_data (for cancel_op), or 0 when the engine has none (epoll) or the
/// SQ has no room: the caller then reads another way.
std::uint64_t arm_multishot_recv(Worker* w, int fd, int fixed, void (*sink)(void*, int, std::uint32_t), void* ctx);
/// Empties registered-file slot `slot` and waits for it (fiber context, the
/// slot's worker): 0 or a raw -errno.
int remove_file_now(Worker* w, int slot);

// ---- io_uring only: SQEs filled by the caller (runtime/uring and tests) ----
/// Runs one io_uring op and returns its CQE result (raw -errno on failure) and
/// why it ended (OpEnd); a `deadline` links a timeout.
OpEnd await_op(Worker* w, PrepFn prep, void* arg, Deadline deadline = Deadline::none(),
               std::uint32_t* cqe_flags = nullptr, OpKind kind = OpKind::other);
/// Starts a multishot op whose CQEs go to `sink(ctx, res, flags)` in scheduler
/// context; its user_data (for cancel_op), or 0 when the SQ has no room.
std::uint64_t arm_multishot(Worker* w, PrepFn prep, void* arg, void (*sink)(void*, int, std::uint32_t), void* ctx);
/// Queues an ASYNC_CANCEL of the op named by `user_data` (fire-and-forget).
void cancel_op(Worker* w, std::uint64_t user_data) noexcept;
/// The explorer's yield point where a fiber enters a socket op or a close
/// (Config::explore; nothing when it is off).
void explore_yield();

// ---- the worker's ring and tables ----
/// What the worker's ring supports (its probe).
const RingInfo& ring_info(const Worker* w) noexcept;
/// The Config the worker was started with (its runtime's).
const Config& worker_config(const Worker* w) noexcept;
/// The provided-buffer ring, made at the first call; null when Config::recv_buffers
/// is 0 or the kernel refused it.
BufRing* buf_ring(Worker* w);
/// FixedFiles::install / remove / forget on the worker's registered-file table;
/// install gives -1 (use the fd) on the epoll engine, which has none.
int install_file(Worker* w, int fd, std::atomic<int>* holder);
void remove_file(Worker* w, int slot);
void forget_file(Worker* w, int slot);
/// Any thread: takes the slot out of `holder`; the worker clears it at its next tick.
void remove_file_remote(Worker* w, std::atomic<int>* holder);

// ---- fibers on a given worker ----
/// Any thread: places `f` (new) on `w` as Runtime::spawn_on does: deletes it and
/// throws ShutDown once the runtime stops accepting.
void place_on(Worker* w, FiberBase* f, const SpawnOptions& opts);
/// Starts `fn` as a fiber on `w` (any thread): Runtime::spawn_on for a worker
/// known only by its pointer.
template <class F>
JoinHandle<SpawnResult<F>> spawn_on_worker(Worker* w, F&& fn, SpawnOptions opts = {}) {
  using R = SpawnResult<F>;
  auto* f = new FiberImpl<std::decay_t<F>, R>(std::forward<F>(fn));
  place_on(w, f, opts);
  return make_join_handle<R>(f);
}

/// Throws CrossRuntimeError for a call on an fd's holder (a socket, a file) that
/// `owner`, not the caller's worker, owns: "<subject> belongs to worker N of
/// runtime 'R'", with `advice` as the bridge to use.
[[noreturn]] void throw_owned_elsewhere(const std::string& subject, const Worker* owner, std::string_view advice);

// ---- net/'s per-worker state ----
/// What net/ keeps on each worker (its receive counters): the worker owns it and
/// adds it into its stats.
class WorkerSlot {
 public:
  WorkerSlot() = default;
  WorkerSlot(const WorkerSlot&) = delete;
  WorkerSlot& operator=(const WorkerSlot&) = delete;
  virtual ~WorkerSlot() = default;
  /// Any thread (Runtime::stats()): adds this slot's counters into `s`.
  virtual void add_stats(Stats& s) const noexcept = 0;
};
/// The worker's net slot, null until set.
WorkerSlot* net_slot(Worker* w) noexcept;
/// Sets the worker's net slot (its thread, once).
void set_net_slot(Worker* w, std::unique_ptr<WorkerSlot> slot) noexcept;

// ---- a multishot receive's CQE flags (arm_multishot_recv's sink) ----
/// What the flags of one CQE of a multishot receive say.
struct RecvCqe {
  bool has_buffer = false;   ///< it filled `buffer`, a buffer of the worker's BufRing
  std::uint16_t buffer = 0;  ///< that buffer's id (valid with has_buffer)
  bool more = false;         ///< more CQEs follow (false: the receive has ended)
};
/// Decodes the `flags` the sink of arm_multishot_recv() is given.
RecvCqe recv_cqe(std::uint32_t flags) noexcept;

}  // namespace weft::detail
