// weft/sync/channel.hpp — Channel<T>: a bounded MPMC queue and a sanctioned bridge
// between the domains. Either end may be used from fibers of any worker (they
// park) and from plain threads (they block on a futex), at the same time.
//
// Invariants (all state below is guarded by mu_; there are no atomics here: the
// only cross-thread flag is each detail::Waiter's claim word, see waiter.hpp):
//  - buf_ is a ring of capacity_ slots: head_ indexes the oldest item, count_ items
//    follow it. capacity_ == 0 is a rendezvous channel (every send meets a recv).
//  - senders_ / receivers_: FIFO queues of blocked callers. Each Waiter lives on its
//    caller's stack; its payload points at that caller's Op (also on its stack).
//    A queued, unclaimed sender implies the buffer is full; a queued, unclaimed
//    receiver implies it is empty. Claimed waiters (timed out / cancelled) may
//    linger in a queue until their owner re-locks and unlinks itself; every
//    popper skips them.
//  - Hand-off: a popper (holding mu_) first completes the transfer into or out of
//    the waiter's Op, records op.status, and only then calls notify(). notify()
//    publishes those writes (acq_rel claim, acquire in wait()). If notify() fails
//    the waiter's own deadline/cancel won the claim: the popper undoes the
//    transfer and passes it on to the next waiter (or the buffer). So a wait that
//    returns notified always carries its transfer; one that returns timed_out or
//    cancelled never does: no value is lost or duplicated.
//  - notify() is only called under mu_: a claimed waiter re-locks mu_ before it
//    returns, so it cannot vanish while a popper still dereferences it, and the
//    channel cannot be destroyed under a popper that has yet to unlock mu_ (a
//    notified waiter also takes mu_ once before returning).
//  - Nobody parks or blocks while holding mu_ (Waiter::wait runs unlocked).
//  - closed_ goes false -> true once. Then sends fail (ChannelClosed / closed) and
//    every queued waiter is woken with closed; receivers still drain buf_ first.
//  - The calls that may block (send, recv, send_for, recv_for) are refused with
//    CrossRuntimeError in a worker's scheduler context (a Timer callback), whether
//    or not they would wait this time and before touching any state: blocking there
//    would stall the worker. try_send, try_recv and close work there.
//
// Lifetime: destroy a Channel once no call on it is in progress, with one
// exception that is guaranteed: a call that waited (a recv() parked until a
// sender handed it a value, the reply-channel pattern) may destroy it as soon as
// it returns, because the waiter takes mu_ once after waking and so outlasts the
// notifier's unlock. The converse is not yet safe: a call that did not wait
// (a recv() that took the value of a *blocked* sender, on a full or rendezvous
// channel) must not destroy the channel before that send() has returned, since
// the woken sender still takes mu_. Making both safe needs the notify split in
// two at the Waiter (claim under the lock, publish after the unlock).
//
// Errors: send() on a closed channel throws ChannelClosed (its value is destroyed;
// use try_send/send_for to keep it). A fiber cancelled while blocked (runtime
// shutdown) gets FiberCancelled after it has unlinked itself; its value is
// destroyed with the unwinding frame. T must be nothrow-movable: values move
// under the lock and a throwing move would leave a transfer half-done.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/runtime/error.hpp>
#include <weft/runtime/fiber/fiber.hpp>
#include <weft/runtime/this_fiber.hpp>
#include <weft/runtime/tsa.hpp>
#include <weft/runtime/waiter.hpp>
#include <weft/sync/waiter_queue.hpp>

namespace weft {

/// send() on a closed channel.
class ChannelClosed : public std::runtime_error {
 public:
  ChannelClosed() : std::runtime_error("weft: send on a closed Channel") {}
};

enum class SendStatus { ok, full, closed, timed_out };
enum class RecvStatus { ok, empty, closed, timed_out };

/// The outcome of try_recv()/recv_for(): `value` is engaged iff status == ok.
template <class T>
struct RecvResult {
  RecvStatus status;
  std::optional<T> value;
  explicit operator bool() const noexcept { return status == RecvStatus::ok; }
};

namespace detail {

[[noreturn]] void throw_channel_closed();
[[noreturn]] void throw_fiber_cancelled();
[[noreturn]] void throw_channel_blocking_in_scheduler(const char* op);

/// Refuses a Channel call that may block when made in a worker's scheduler context.
inline void check_channel_may_block(const char* op) {
  const ThreadState& ts = t_state;
  if (ts.worker && !ts.fiber) [[unlikely]]
    throw_channel_blocking_in_scheduler(op);
}

}  // namespace detail

template <class T>
class Channel {
  static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_move_assignable_v<T>,
                "weft::Channel<T> needs a noexcept move constructor and move assignment");

 public:
  /// `capacity` items fit without a receiver; 0 makes a rendezvous channel.
  explicit Channel(std::size_t capacity) : buf_(capacity), capacity_(capacity) {}
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  /// Blocks while full. Throws ChannelClosed if closed (the value is destroyed),
  /// FiberCancelled if the calling fiber is cancelled while blocked,
  /// CrossRuntimeError in a scheduler context (a Timer callback: use try_send).
  void send(T value) {
    detail::check_channel_may_block("send()");
    if (send_impl(value, -1, true) == SendStatus::closed) detail::throw_channel_closed();
  }
  /// ok (value moved from), full or closed (value untouched). Never blocks.
  SendStatus try_send(T& value) { return send_impl(value, -1, false); }
  /// ok, timed_out (after at least `d`) or closed; the value is destroyed unless ok.
  template <class Rep, class Period>
  SendStatus send_for(T value, std::chrono::duration<Rep, Period> d) {
    detail::check_channel_may_block("send_for()");
    return send_impl(value, detail::deadline_after(std::chrono::duration_cast<std::chrono::nanoseconds>(d)), true);
  }

  /// Blocks while empty; nullopt once closed and drained. CrossRuntimeError in a
  /// scheduler context (a Timer callback: use try_recv).
  std::optional<T> recv() {
    detail::check_channel_may_block("recv()");
    return recv_impl(-1, true).value;
  }
  /// ok, empty or closed (closed only once drained). Never blocks.
  RecvResult<T> try_recv() { return recv_impl(-1, false); }
  /// ok, timed_out (after at least `d`) or closed.
  template <class Rep, class Period>
  RecvResult<T> recv_for(std::chrono::duration<Rep, Period> d) {
    detail::check_channel_may_block("recv_for()");
    return recv_impl(detail::deadline_after(std::chrono::duration_cast<std::chrono::nanoseconds>(d)), true);
  }

  /// Idempotent. Wakes every blocked sender (closed) and receiver (closed once
  /// drained: a receiver only blocks when the buffer is empty).
  void close() {
    detail::LockGuard g(mu_);
    if (closed_) return;
    closed_ = true;
    for (detail::WaiterQueue* q : {&senders_, &receivers_}) {
      while (detail::Waiter* w = q->pop_front()) {
        op_of(w)->status = Status::closed;
        w->notify();  // false: it timed out / was cancelled and reports that instead
      }
    }
  }

  [[nodiscard]] bool is_closed() const {
    detail::LockGuard g(mu_);
    return closed_;
  }
  [[nodiscard]] std::size_t size() const {
    detail::LockGuard g(mu_);
    return count_;
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

 private:
  enum class Status { pending, ok, closed };
  // One blocked call, on its caller's stack; Waiter::payload points here.
  struct Op {
    T* src = nullptr;                   // sender: the value to hand over
    std::optional<T>* dst = nullptr;    // receiver: where a hand-over lands
    Status status = Status::pending;    // set by the popper before notify()
  };
  static Op* op_of(detail::Waiter* w) noexcept { return static_cast<Op*>(w->payload); }

  // Hands `value` to the first live queued receiver. Requires mu_.
  bool hand_to_receiver(T& value) WEFT_REQUIRES(mu_) {
    while (detail::Waiter* w = receivers_.pop_front()) {
      if (w->claimed()) continue;  // timed out / cancelled: it unlinks-checks itself
      Op* op = op_of(w);
      op->dst->emplace(std::move(value));
      op->status = Status::ok;
      if (w->notify()) return true;
      value = std::move(**op->dst);  // its deadline won the claim: undo, try the next
      op->dst->reset();
      op->status = Status::pending;
    }
    return false;
  }

  // Takes the value of the first live queued sender into `out`. Requires mu_.
  bool take_from_sender(std::optional<T>& out) WEFT_REQUIRES(mu_) {
    while (detail::Waiter* w = senders_.pop_front()) {
      if (w->claimed()) continue;
      Op* op = op_of(w);
      out.emplace(std::move(*op->src));
      op->status = Status::ok;
      if (w->notify()) return true;
      *op->src = std::move(*out);  // undo: the sender keeps its value
      out.reset();
      op->status = Status::pending;
    }
    return false;
  }

  void push_buf(T& value) WEFT_REQUIRES(mu_) {
    buf_[(head_ + count_) % capacity_].emplace(std::move(value));
    ++count_;
  }
  void pop_buf(std::optional<T>& out) WEFT_REQUIRES(mu_) {
    out.emplace(std::move(*buf_[head_]));
    buf_[head_].reset();
    head_ = (head_ + 1) % capacity_;
    --count_;
  }

  // Parks / blocks on `w` (queued in senders_ or receivers_ under mu_, now
  // released) and sorts out how it ended: the popper's status, or pending when
  // our own deadline won the claim.
  Status await(detail::Waiter& w, Op& op, bool sender, std::int64_t deadline) WEFT_EXCLUDES(mu_) {
    const detail::Waiter::Result r = w.wait(deadline);
    if (r == detail::Waiter::Result::notified) {
      // The popper notified us under mu_ and may still hold it. Take it once
      // before returning: after that the popper no longer touches this channel,
      // so the caller may destroy it (a reply channel on the receiver's stack).
      detail::LockGuard g(mu_);
      return op.status;  // acquire in wait() shows it
    }
    {
      detail::LockGuard g(mu_);
      detail::WaiterQueue& q = sender ? senders_ : receivers_;
      // Still queued: unlink. Not queued: a popper's notify() lost to our claim and
      // it undid its transfer (op.status is pending again), or close() popped us.
      if (q.contains(&w)) q.erase(&w);
    }
    if (r == detail::Waiter::Result::cancelled) detail::throw_fiber_cancelled();
    return Status::pending;
  }

  SendStatus send_impl(T& value, std::int64_t deadline, bool block) {
    detail::Waiter w;
    Op op;
    {
      detail::LockGuard g(mu_);
      if (closed_) return SendStatus::closed;
      if (hand_to_receiver(value)) return SendStatus::ok;
      if (count_ < capacity_) {
        push_buf(value);
        return SendStatus::ok;
      }
      if (!block) return SendStatus::full;
      op.src = &value;
      w.payload = &op;
      senders_.push_back(&w);
    }
    switch (await(w, op, true, deadline)) {
      case Status::ok: return SendStatus::ok;
      case Status::closed: return SendStatus::closed;
      case Status::pending: break;
    }
    return SendStatus::timed_out;
  }

  RecvResult<T> recv_impl(std::int64_t deadline, bool block) {
    RecvResult<T> res{RecvStatus::ok, std::nullopt};
    detail::Waiter w;
    Op op;
    {
      detail::LockGuard g(mu_);
      if (count_ > 0) {
        pop_buf(res.value);
        // A slot freed up: the oldest live blocked sender fills it (FIFO kept).
        std::optional<T> refill;
        if (take_from_sender(refill)) push_buf(*refill);
        return res;
      }
      if (take_from_sender(res.value)) return res;  // rendezvous (capacity 0)
      if (closed_) return {RecvStatus::closed, std::nullopt};
      if (!block) return {RecvStatus::empty, std::nullopt};
      op.dst = &res.value;
      w.payload = &op;
      receivers_.push_back(&w);
    }
    switch (await(w, op, false, deadline)) {
      case Status::ok: return res;
      case Status::closed: return {RecvStatus::closed, std::nullopt};
      case Status::pending: break;
    }
    return {RecvStatus::timed_out, std::nullopt};
  }

  mutable detail::AnnotatedMutex mu_;
  std::vector<std::optional<T>> buf_ WEFT_GUARDED_BY(mu_);
  const std::size_t capacity_;
  std::size_t head_ WEFT_GUARDED_BY(mu_) = 0;
  std::size_t count_ WEFT_GUARDED_BY(mu_) = 0;
  bool closed_ WEFT_GUARDED_BY(mu_) = false;
  detail::WaiterQueue senders_ WEFT_GUARDED_BY(mu_);
  detail::WaiterQueue receivers_ WEFT_GUARDED_BY(mu_);
};

}  // namespace weft
