// weft/runtime/fiber/fiber.hpp — fibers: the control block, spawn, JoinHandle.
//
// Fiber states (the owner of each is named):
//   created  in a run queue or a worker inbox, no stack yet      (owner: that queue)
//   ready    in its worker's run queue                            (owner: run queue)
//   running  executing on its worker's thread                     (owner: itself)
//   parked   switched out, waiting; exactly one waker will unpark it (owner: the
//            primitive it waits on; the waker claims it before unparking)
//   done     finished; its stack is released by whoever runs next (owner: worker)
// Invariants:
//  - A fiber never migrates: every transition happens on its worker's thread, except
//    the inbox push (any thread), which hands a created/parked fiber to that thread.
//  - The stack is taken from the worker's pool at the first switch into the fiber
//    and returned after the last switch out of it (lazy: a spawned-but-not-started
//    fiber costs only this block).
//  - The control block is shared by the fiber and its JoinHandle (refs == 2 at
//    spawn); whoever drops the last reference frees it, and logs an exception that
//    nobody joined.
//  - join_word: 0 = not done, no joiner; 1 = done; 2 = a plain thread waits in join;
//    otherwise the address of the joining fiber. The finisher exchanges in 1 with
//    acq_rel: release publishes the result to the joiner, acquire sees the joiner.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <weft/runtime/fiber/context.hpp>
#include <weft/runtime/fiber/stack_pool.hpp>

namespace weft {

/// How spawn() starts the new fiber.
enum class Launch : std::uint8_t {
  post,      ///< queue it behind the ready fibers; the caller keeps running
  dispatch,  ///< run it now; the caller resumes as soon as it blocks or finishes
};

struct SpawnOptions {
  std::string_view name{};  ///< shown in logs, dumps and overflow reports (max 31 chars kept)
  Launch launch = Launch::post;
};

class Runtime;
class Mutex;

namespace detail {

// ThreadState and t_state (what the calling thread is running) are defined in
// context.hpp: the switch reads the thread's exception globals from there.

enum class FiberState : std::uint8_t { created, ready, running, parked, done };

/// Called when a parked fiber is cancelled: it must claim the fiber's wait (so no
/// other waker will unpark it) and unpark it, or arrange that its final
/// completion does. Runs on the fiber's worker, in scheduler or fiber context.
using CancelHook = void (*)(FiberBase* f, void* arg);

/// A fiber's badge: its id and name, written at the top of its stack when it gets
/// the stack.
/// Pooled stack memory stays mapped for the worker's whole life, so an observer on
/// another thread (the stall detector) may read a badge at any time without ever
/// touching a fiber block that might be freed. All fields are relaxed atomics; a
/// reader validates what it read against the worker's switch epoch (seqlock-style).
/// The words are plain (trivial type: stack memory is reinterpreted, never
/// constructed) and accessed only through std::atomic_ref.
struct FiberBadge {
  alignas(8) std::uint64_t id;
  std::uint64_t name[4];  // up to 31 chars + NUL, packed
  void write(std::uint64_t fiber_id, const char* fiber_name) noexcept;
  /// The name, or "fiber#<id>" for an unnamed fiber.
  [[nodiscard]] std::string read() const;
};

inline constexpr std::uintptr_t kJoinNone = 0;
inline constexpr std::uintptr_t kJoinDone = 1;
inline constexpr std::uintptr_t kJoinThread = 2;

class FiberBase {
 public:
  FiberBase() = default;
  FiberBase(const FiberBase&) = delete;
  FiberBase& operator=(const FiberBase&) = delete;
  virtual ~FiberBase() = default;

  /// Runs the body; stores the result or the exception. Never throws.
  virtual void run() noexcept = 0;
  /// Destroys the body without running it (a fiber completed without running),
  /// so what it captured goes on its worker's thread, as a run body's does.
  virtual void drop() noexcept = 0;

  /// Fiber blocks come from a per-thread size-class cache: spawn/join in batches
  /// would otherwise make the heap shrink and regrow (page faults per batch).
  static void* operator new(std::size_t size);
  static void operator delete(void* p, std::size_t size) noexcept;

  [[nodiscard]] std::uint64_t id() const { return id_; }
  /// The name given at spawn, or "fiber#<id>".
  [[nodiscard]] std::string display_name() const;
  [[nodiscard]] const char* raw_name() const { return name_; }
  void set_name(std::string_view n);

  /// Drops one reference; the last one frees the block (and logs an unjoined error).
  void release_ref() noexcept;
  /// Blocks the caller (fiber: parks; thread: futex wait) until the fiber is done.
  void wait_done();
  [[nodiscard]] bool is_done() const { return join_word_.load(std::memory_order_acquire) == kJoinDone; }
  /// Rethrows the stored exception, if any, and marks it joined.
  void rethrow_if_failed();

  // ---- worker-owned state (only the worker's thread touches these) ----
  // The fields every switch touches come first: with the vtable pointer they fill
  // one cache line in release builds (vptr 8, ctx_ 24: stack pointer and exception
  // state, run_next_ 8, badge_ 8, state_ and cancel_requested_: 50 bytes).
  Context ctx_;
  FiberBase* run_next_ = nullptr;  ///< run queue link
  FiberBadge* badge_ = nullptr;    ///< at the top of stack_, while it has one
  FiberState state_ = FiberState::created;
  bool cancel_requested_ = false;
  /// this_fiber::DeferCancellation scopes alive in this fiber.
  std::uint16_t cancel_defer_ = 0;
  /// Parked with an unpark on its way (shutdown must wait for it): its cancel hook
  /// found the wait claimed by someone else, or a notifier committed to it before
  /// it parked (Waiter::wait_committed). Reset when it resumes.
  bool wake_owed_ = false;
  Stack stack_;
  FiberBase* inbox_next_ = nullptr;  ///< inbox link: written before the publishing CAS
  FiberBase* all_prev_ = nullptr;    ///< the worker's list of live fibers (dumps)
  FiberBase* all_next_ = nullptr;
  Worker* worker_ = nullptr;
  std::uint64_t id_ = 0;
  const char* wait_reason_ = "";
  CancelHook cancel_hook_ = nullptr;
  void* cancel_arg_ = nullptr;
  char name_[32] = {};
  /// The weft::Mutexes this fiber holds (sync/owner.hpp): reported if it ends holding one.
  Mutex* held_mutexes_ = nullptr;

  // ---- shared with the JoinHandle ----
  std::atomic<std::uintptr_t> join_word_{kJoinNone};
  // Two owners at spawn (the fiber, the handle); acq_rel on decrement so the last
  // owner sees every write the other made before it let go (an owner that reads 1
  // with acquire is the last, and frees without decrementing: release_ref()).
  std::atomic<std::uint32_t> refs_{2};
  std::exception_ptr error_;
  bool joined_ = false;  ///< the handle consumed the outcome (written by the joiner)
};

template <class R>
class FiberResult : public FiberBase {
 public:
  std::optional<R> value_;
  R take() { return std::move(*value_); }
};
template <>
class FiberResult<void> : public FiberBase {
 public:
  void take() {}
};

// The callable, and so everything it captured, is destroyed at the end of run(),
// in the fiber itself, before its result is published: a captured socket closes
// there (where close() may wait for the kernel), not in whatever context later
// frees the fiber object. A fiber its worker completes without running (cancelled
// before it started) drops it there, by drop(), before that is published; one
// whose spawn is refused drops it with the object, in the spawning thread.
template <class F, class R>
class FiberImpl final : public FiberResult<R> {
 public:
  template <class G>
  explicit FiberImpl(G&& g) : fn_(std::in_place, std::forward<G>(g)) {}
  void run() noexcept override {
    try {
      if constexpr (std::is_void_v<R>) {
        (*fn_)();
      } else {
        this->value_.emplace((*fn_)());
      }
    } catch (...) {
      this->error_ = std::current_exception();
    }
    fn_.reset();
  }
  void drop() noexcept override { fn_.reset(); }

 private:
  std::optional<F> fn_;
};

/// Logs each weft::Mutex that `f` (which has just ended) still holds, by the
/// fiber's name and the Mutex's name, and marks its owner as ended (sync/mutex.cpp).
void report_mutexes_held_at_end(FiberBase* f) noexcept;

/// Places a new fiber for weft::spawn: on the calling fiber's worker when
/// Config::placement is local or there is one worker, else by the runtime's
/// placement. The caller must be a fiber (weft::spawn checks before allocating).
void start_local(FiberBase* f, const SpawnOptions& opts);
/// JoinHandle::cancel(): asks `f`'s worker to cancel it (any thread; never throws).
void request_cancel(FiberBase* f) noexcept;
/// Throws CrossRuntimeError naming `operation` unless the caller is a fiber.
void require_fiber(const char* operation);

}  // namespace detail

template <class R>
class JoinHandle;

namespace detail {
/// The handle of a fiber just created (it holds the handle's reference).
template <class R>
JoinHandle<R> make_join_handle(FiberResult<R>* f) noexcept;
}  // namespace detail

/// Owns the right to join a fiber: join() returns its result or rethrows its
/// exception. Dropping the handle detaches the fiber (an exception it ends with is
/// then logged with its name), so a handle nobody looks at is a warning.
template <class R>
class [[nodiscard("dropping a JoinHandle detaches the fiber: join() it or call detach()")]] JoinHandle {
 public:
  JoinHandle() = default;
  JoinHandle(JoinHandle && o) noexcept : f_(std::exchange(o.f_, nullptr)) {}
  JoinHandle& operator=(JoinHandle&& o) noexcept {
    if (this != &o) {
      reset();
      f_ = std::exchange(o.f_, nullptr);
    }
    return *this;
  }
  JoinHandle(const JoinHandle&) = delete;
  JoinHandle& operator=(const JoinHandle&) = delete;
  ~JoinHandle() {
    reset();
  }

  /// Waits for the fiber (a fiber parks, a plain thread blocks) and returns its
  /// result or rethrows its exception. Valid once; the handle is empty afterwards.
  R join() {
    if (!f_) throw std::logic_error("weft: join() on an empty JoinHandle");
    detail::FiberResult<R>* f = f_;
    f->wait_done();
    struct Drop {
      JoinHandle* h;
      ~Drop() { h->reset(); }
    } drop{this};
    f->rethrow_if_failed();
    return f->take();
  }
  [[nodiscard]] bool done() const {
    return f_ && f_->is_done();
  }
  [[nodiscard]] bool valid() const {
    return f_ != nullptr;
  }
  [[nodiscard]] std::uint64_t id() const {
    return f_ ? f_->id() : 0;
  }
  [[nodiscard]] std::string name() const {
    return f_ ? f_->display_name() : std::string();
  }
  /// Lets the fiber run on without a handle.
  void detach() {
    reset();
  }
  /// Cancels the fiber (any thread, any number of times; no-op once it is done):
  /// not started yet, it ends with FiberCancelled without running; parked in a
  /// blocking call, that call ends with FiberCancelled (an I/O op first waits
  /// for its completion); running or ready, its next blocking call does. While
  /// it unwinds an exception (a destructor that blocks) or inside a
  /// this_fiber::DeferCancellation scope the cancellation waits. join() then
  /// rethrows FiberCancelled (which is never logged as an unjoined error).
  void cancel() noexcept {
    if (f_) detail::request_cancel(f_);
  }

 private:
  friend JoinHandle detail::make_join_handle<R>(detail::FiberResult<R> * f) noexcept;
  explicit JoinHandle(detail::FiberResult<R> * f) noexcept : f_(f) {}
  void reset() {
    if (f_) std::exchange(f_, nullptr)->release_ref();
  }
  detail::FiberResult<R>* f_ = nullptr;
};

template <class R>
JoinHandle<R> detail::make_join_handle(detail::FiberResult<R>* f) noexcept {
  return JoinHandle<R>(f);
}

template <class F>
using SpawnResult = std::invoke_result_t<std::decay_t<F>>;

/// Starts `fn` as a fiber of the caller's runtime, on the worker Config::placement
/// chooses (round_robin by default; local keeps it on the caller's worker).
/// Evented only: from a plain thread it throws CrossRuntimeError (use
/// Runtime::spawn there).
template <class F>
JoinHandle<SpawnResult<F>> spawn(F&& fn, SpawnOptions opts = {}) {
  detail::require_fiber("weft::spawn");
  using R = SpawnResult<F>;
  auto* f = new detail::FiberImpl<std::decay_t<F>, R>(std::forward<F>(fn));
  detail::start_local(f, opts);
  return detail::make_join_handle<R>(f);
}

}  // namespace weft
