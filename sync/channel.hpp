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
//  - Hand-off: a popper (holding mu_) first claims the waiter (the first half of
//    the notify, detail::WakeList::claim), then completes the transfer into or
//    out of the waiter's Op and records op.status, and wakes the waiter only
//    after unlocking mu_ (the WakeList, declared before the lock guard). The wake
//    publishes the transfer (release store, acquire in wait()). A claim that
//    fails means the waiter's own deadline/cancel won: the popper leaves it and
//    passes the transfer on to the next waiter (or the buffer). So a wait that
//    returns notified always carries its transfer; one that returns timed_out or
//    cancelled never does: no value is lost or duplicated.
//  - A claimed waiter stays parked until its wake, and after it touches nothing
//    of the channel; the popper's last access to the channel is its unlock of
//    mu_. So whichever call returns first may destroy the channel (see Lifetime).
//  - Nobody parks or blocks while holding mu_ (Waiter::wait runs unlocked).
//  - closed_ goes false -> true once. Then sends fail (ChannelClosed / closed) and
//    every queued waiter is woken with closed; receivers still drain buf_ first.
//  - The calls that may block (send, recv, send_for, recv_for) are refused with
//    CrossRuntimeError in a worker's scheduler context (a Timer callback), whether
//    or not they would wait this time and before touching any state: blocking there
//    would stall the worker. try_send, try_recv and close work there.
//
// Lifetime: a Channel may be destroyed as soon as any send() or recv() on it has
// returned, on either side: the reply-channel pattern ("send a request carrying a
// Channel on my stack, recv() the answer, return") is safe whether the replier
// was blocked in send() or the requester was blocked in recv(). Destroying it
// while fibers or threads are still blocked on it aborts with a message naming
// it (as every sync primitive does): they would wake into freed memory.
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
/// Prints why a Channel with blocked callers may not be destroyed, and aborts.
[[noreturn]] void die_channel_destroyed(std::size_t capacity, std::size_t receivers, std::size_t senders) noexcept;

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
  /// Aborts with a message if fibers or threads are still blocked on it. (Taking
  /// mu_ also waits out a caller still unlocking it after its call returned.)
  ~Channel() {
    detail::LockGuard g(mu_);
    if (senders_.empty() && receivers_.empty()) [[likely]]
      return;
    std::size_t receivers = 0, senders = 0;
    while (receivers_.pop_front()) ++receivers;
    while (senders_.pop_front()) ++senders;
    detail::die_channel_destroyed(capacity_, receivers, senders);
  }

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
  /// `d` saturates (hours::max() means no deadline).
  template <class Rep, class Period>
  SendStatus send_for(T value, std::chrono::duration<Rep, Period> d) {
    detail::check_channel_may_block("send_for()");
    return send_impl(value, detail::deadline_after(detail::saturating_ns(d)), true);
  }

  /// Blocks while empty; nullopt once closed and drained. CrossRuntimeError in a
  /// scheduler context (a Timer callback: use try_recv).
  std::optional<T> recv() {
    detail::check_channel_may_block("recv()");
    return recv_impl(-1, true).value;
  }
  /// ok, empty or closed (closed only once drained). Never blocks.
  RecvResult<T> try_recv() { return recv_impl(-1, false); }
  /// ok, timed_out (after at least `d`) or closed. `d` saturates (hours::max()
  /// means no deadline).
  template <class Rep, class Period>
  RecvResult<T> recv_for(std::chrono::duration<Rep, Period> d) {
    detail::check_channel_may_block("recv_for()");
    return recv_impl(detail::deadline_after(detail::saturating_ns(d)), true);
  }

  /// Idempotent. Wakes every blocked sender (closed) and receiver (closed once
  /// drained: a receiver only blocks when the buffer is empty).
  void close() {
    detail::WakeList woken;  // woken after g's unlock
    detail::LockGuard g(mu_);
    if (closed_) return;
    closed_ = true;
    for (detail::WaiterQueue* q : {&senders_, &receivers_}) {
      while (detail::Waiter* w = q->pop_front())
        if (woken.claim(w)) op_of(w)->status = Status::closed;  // false: it timed out / was cancelled
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
  /// True while some fiber or thread is blocked in send() or recv() (a snapshot).
  [[nodiscard]] bool has_waiters() const {
    detail::LockGuard g(mu_);
    return !senders_.empty() || !receivers_.empty();
  }

 private:
  enum class Status { pending, ok, closed };
  // One blocked call, on its caller's stack; Waiter::payload points here.
  struct Op {
    T* src = nullptr;                 // sender: the value to hand over
    std::optional<T>* dst = nullptr;  // receiver: where a hand-over lands
    Status status = Status::pending;  // set by the popper between its claim and the wake
  };
  static Op* op_of(detail::Waiter* w) noexcept { return static_cast<Op*>(w->payload); }

  // Hands `value` to the first live queued receiver, claimed into `woken` (woken
  // after the unlock). Requires mu_.
  bool hand_to_receiver(T& value, detail::WakeList& woken) WEFT_REQUIRES(mu_) {
    while (detail::Waiter* w = receivers_.pop_front()) {
      if (!woken.claim(w)) continue;  // timed out / cancelled: it reports that instead
      Op* op = op_of(w);
      op->dst->emplace(std::move(value));  // it stays parked until the wake
      op->status = Status::ok;
      return true;
    }
    return false;
  }

  // Takes the value of the first live queued sender into `out`, the sender claimed
  // into `woken`. Requires mu_.
  bool take_from_sender(std::optional<T>& out, detail::WakeList& woken) WEFT_REQUIRES(mu_) {
    while (detail::Waiter* w = senders_.pop_front()) {
      if (!woken.claim(w)) continue;
      Op* op = op_of(w);
      out.emplace(std::move(*op->src));
      op->status = Status::ok;
      return true;
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
    // Woken after the popper's unlock: its last access to the channel is behind
    // us, and we touch the channel no more (the caller may destroy it at once).
    if (r == detail::Waiter::Result::notified) return op.status;  // acquire in wait() shows it
    {
      detail::LockGuard g(mu_);
      detail::WaiterQueue& q = sender ? senders_ : receivers_;
      // Still queued: unlink. Not queued: a popper's claim lost to ours and it left
      // us (op.status is still pending), or close() popped us.
      if (q.contains(&w)) q.erase(&w);
    }
    if (r == detail::Waiter::Result::cancelled) detail::throw_fiber_cancelled();
    return Status::pending;
  }

  SendStatus send_impl(T& value, std::int64_t deadline, bool block) {
    detail::Waiter w;
    Op op;
    {
      detail::WakeList woken;  // a receiver we hand to is woken after g's unlock
      detail::LockGuard g(mu_);
      if (closed_) return SendStatus::closed;
      if (hand_to_receiver(value, woken)) return SendStatus::ok;
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
      case Status::ok:
        return SendStatus::ok;
      case Status::closed:
        return SendStatus::closed;
      case Status::pending:
        break;
    }
    return SendStatus::timed_out;
  }

  RecvResult<T> recv_impl(std::int64_t deadline, bool block) {
    RecvResult<T> res{RecvStatus::ok, std::nullopt};
    detail::Waiter w;
    Op op;
    {
      detail::WakeList woken;  // a sender we take from is woken after g's unlock
      detail::LockGuard g(mu_);
      if (count_ > 0) {
        pop_buf(res.value);
        // A slot freed up: the oldest live blocked sender fills it (FIFO kept).
        std::optional<T> refill;
        if (take_from_sender(refill, woken)) push_buf(*refill);
        return res;
      }
      if (take_from_sender(res.value, woken)) return res;  // rendezvous (capacity 0)
      if (closed_) return {RecvStatus::closed, std::nullopt};
      if (!block) return {RecvStatus::empty, std::nullopt};
      op.dst = &res.value;
      w.payload = &op;
      receivers_.push_back(&w);
    }
    switch (await(w, op, false, deadline)) {
      case Status::ok:
        return res;
      case Status::closed:
        return {RecvStatus::closed, std::nullopt};
      case Status::pending:
        break;
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
