// net/read_buffer.cpp — buffered reads: one multishot receive per socket, armed
// by the first read_buffer(), fills buffers of the worker's provided-buffer ring
// (runtime/uring/buf_ring.hpp) that queue on the socket until a reader takes them.
// The kernel's poll on the socket stays armed from one chunk to the next, where a
// plain receive re-arms it for every read.
//
// Invariants (the owner worker's thread only, like the rest of SocketCore):
//  - The receive is idle or armed (its op in flight). Its last CQE (no F_MORE) ends
//    it: end of stream (res 0), an error, -ENOBUFS (the ring ran dry), or
//    -ECANCELED (close, the runtime's stop, or the flow cap below).
//  - Armed, it ties the socket to its worker (a move does not release it), and
//    the close protocol (socket.hpp; a close from elsewhere is handed to the
//    worker) cancels it by fd with the ops and waits for its last CQE as for an
//    op, so the state is never freed under it. `state` is read by a thread moving
//    the socket (acquire), written by the worker (release).
//  - The queue holds the chunks the kernel delivered and no reader took yet, in
//    arrival order, linked through the ring's per-buffer links; `off` bytes of the
//    head were already copied out by a read_some(). The queue holds a reference to
//    its ring, so its buffers stay valid after the worker's exit.
//  - Flow: an armed receive keeps taking buffers while its reader is busy, so from
//    kMaxQueued chunks on it is cancelled; TCP's window then holds the peer back
//    until the reader drains the queue, and the next read arms it again.
//  - A dry ring: a receive the kernel ended with -ENOBUFS is not armed again at
//    once. The reads after it are plain receives into heap buffers: 2, 4, 8 ...
//    up to 2^kMaxDryStreak of them as arms keep ending dry before any chunk
//    arrives; a chunk resets the count. Re-arming at once, while many starved
//    readers compete for the few buffers given back, made a herd of arms that each
//    ended -ENOBUFS (about 11 per request with 64 buffers and 512 busy
//    connections; 0.14 with this rule).
//  - One reader at a time waits for a chunk (a Waiter on its stack, counted in
//    `pending`); the sink notifies it on every CQE and it re-checks the state.
//  - End of stream and errors are kept in `end` until the queue before them is
//    read: end of stream then reads as 0 every time, an error is thrown once.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include <weft/net/socket.hpp>
#include <weft/net/socket_core.hpp>
#include <weft/runtime/fiber/park.hpp>
#include <weft/runtime/io_op.hpp>
#include <weft/runtime/uring/ops.hpp>
#include <weft/runtime/waiter.hpp>

namespace weft::net {

using weft::detail::BufRing;
using weft::detail::IoKind;
using weft::detail::IoOp;
using weft::detail::t_state;
using weft::detail::Worker;

namespace detail {

// net/'s counters on each worker (Stats::recv_*), kept in the worker's net slot
// (runtime/uring/ops.hpp). One writer: the worker's thread.
struct RecvCounters final : weft::detail::WorkerSlot {
  weft::detail::Counter arms;     ///< multishot receives armed
  weft::detail::Counter starved;  ///< armed receives the kernel ended with -ENOBUFS (ring dry)
  weft::detail::Counter plain;    ///< buffered reads served by a plain receive into a heap buffer
  void add_stats(Stats& s) const noexcept override {
    s.recv_arms += arms.get();
    s.recv_starved += starved.get();
    s.recv_plain += plain.get();
  }
};

// The counters of `w`, made at the first buffered read there (may throw bad_alloc then).
RecvCounters& recv_counters(Worker* w) {
  if (weft::detail::WorkerSlot* s = weft::detail::net_slot(w)) return static_cast<RecvCounters&>(*s);
  auto made = std::make_unique<RecvCounters>();
  RecvCounters& r = *made;
  weft::detail::set_net_slot(w, std::move(made));
  return r;
}

constexpr std::uint8_t kIdle = 0, kArmed = 1;
constexpr std::uint8_t kMaxDryStreak = 6;  // see the invariant on a dry ring

struct ReadBufferState {
  BufRing* ring = nullptr;  ///< holds a reference while set
  std::uint64_t ud = 0;     ///< the armed receive's user_data (for the flow cap's cancel)
  std::uint16_t head = BufRing::kNone, tail = BufRing::kNone;
  std::uint32_t off = 0;     ///< bytes of the head chunk already copied out
  std::uint32_t queued = 0;  ///< chunks in the queue
  int end = 1;               ///< 1: none; 0: end of stream; < 0: -errno to throw
  std::atomic<std::uint8_t> state{kIdle};
  bool cancel_sent = false;      ///< the flow cap cancelled the armed receive
  std::uint8_t dry_streak = 0;   ///< arms in a row that ended -ENOBUFS before any chunk
  std::uint32_t plain_left = 0;  ///< plain receives still to do before arming again
  bool fixed = false;            ///< it names the registered-file slot
  bool refused_fixed = false;    ///< it ended with -EBADF on the slot: use the fd
  bool delivered = false;        ///< a chunk ever arrived (an -EINVAL after that is an error)
  weft::detail::Waiter* reader = nullptr;

  void push(std::uint16_t bid, std::uint32_t len) {
    ring->len(bid) = len;
    ring->next(bid) = BufRing::kNone;
    if (tail == BufRing::kNone)
      head = bid;
    else
      ring->next(tail) = bid;
    tail = bid;
    ++queued;
    delivered = true;
    dry_streak = 0;
  }
  std::uint16_t pop() {
    const std::uint16_t bid = head;
    head = ring->next(bid);
    if (head == BufRing::kNone) tail = BufRing::kNone;
    --queued;
    off = 0;
    return bid;
  }
};

bool read_buffer_in_flight(const SocketCore* c) noexcept {
  return c->read_buffer_state && c->read_buffer_state->state.load(std::memory_order_acquire) != kIdle;
}

bool read_buffer_busy(const SocketCore* c) noexcept {
  // The queue is read only when nothing is in flight: then the worker does not
  // touch it, whichever thread asks.
  return read_buffer_in_flight(c) || (c->read_buffer_state && c->read_buffer_state->head != BufRing::kNone);
}

// Reads go through the queue: a receive armed, bytes queued, or the end queued.
bool read_buffer_serves_reads(const SocketCore* c) noexcept {
  return c->read_buffer_state && (read_buffer_busy(c) || c->read_buffer_state->end < 1);
}

void read_buffer_release(SocketCore* c) noexcept {
  ReadBufferState* rb = std::exchange(c->read_buffer_state, nullptr);
  if (!rb) return;
  if (BufRing* ring = rb->ring) {
    const bool here = t_state.worker == ring->owner();
    while (rb->head != BufRing::kNone) ring->put(rb->pop(), here);
    ring->release();
  }
  delete rb;
}

}  // namespace detail

using detail::kArmed;
using detail::kIdle;
using detail::ReadBufferState;
using detail::SocketCore;

namespace {

// Past this many unread chunks the armed receive is cancelled (see the invariants).
constexpr std::uint32_t kMaxQueued = 16;

// The heap buffers of plain receives, kept per thread for the next one (of the
// same size): a 16 KiB new/delete per read cost the echo server 3.5% of its CPU
// at 512 connections on the epoll engine (perf: _int_free), where every buffered
// read is a plain one. A lease dropped on another thread feeds that thread's cache.
struct HeapCache {
  static constexpr std::size_t kMax = 64;
  std::size_t size = 0;
  std::vector<char*> free;
  HeapCache(const HeapCache&) = delete;
  HeapCache& operator=(const HeapCache&) = delete;
  HeapCache() = default;
  ~HeapCache() {
    for (char* p : free) delete[] p;
  }
};
thread_local HeapCache t_heap_cache;

char* take_heap(std::size_t size) {
  HeapCache& c = t_heap_cache;
  if (c.size == size && !c.free.empty()) {
    char* p = c.free.back();
    c.free.pop_back();
    return p;
  }
  return new char[size];
}

void give_heap(char* p, std::size_t size) noexcept {
  HeapCache& c = t_heap_cache;
  if (c.size != size) {  // another runtime's size: keep the newest
    for (char* q : c.free) delete[] q;
    c.free.clear();
    c.size = size;
  }
  if (c.free.size() < HeapCache::kMax) {
    try {
      if (c.free.capacity() == 0) c.free.reserve(HeapCache::kMax);
      c.free.push_back(p);
      return;
    } catch (...) {  // no memory for the cache: free it instead
    }
  }
  delete[] p;
}

// The buffer of one plain receive until a ReadBuffer takes it (a throw gives it back).
struct HeapLease {
  explicit HeapLease(std::size_t n) : p(take_heap(n)), size(n) {}
  ~HeapLease() {
    if (p) give_heap(p, size);
  }
  HeapLease(const HeapLease&) = delete;
  HeapLease& operator=(const HeapLease&) = delete;
  char* p;
  std::size_t size;
};

// Every CQE of the armed receive, in scheduler context.
void on_cqe(void* ctx, int res, std::uint32_t flags) {
  auto* c = static_cast<SocketCore*>(ctx);
  ReadBufferState* rb = c->read_buffer_state;
  BufRing* ring = rb->ring;
  const weft::detail::RecvCqe cqe = weft::detail::recv_cqe(flags);
  if (cqe.has_buffer) {
    if (res > 0 && !c->closing.load(std::memory_order_acquire))
      rb->push(cqe.buffer, static_cast<std::uint32_t>(res));
    else
      ring->give_back(cqe.buffer);
  }
  if (!cqe.more) {
    if (res == 0) {
      rb->end = 0;
    } else if (res == -ENOBUFS) {  // see the invariant on a dry ring
      if (rb->dry_streak < detail::kMaxDryStreak) ++rb->dry_streak;
      rb->plain_left = 1u << rb->dry_streak;
      static_cast<detail::RecvCounters*>(weft::detail::net_slot(c->owner))->starved.add();  // made by arm()
    } else if (res == -EINVAL && !rb->delivered) {
      ring->multishot_ok = false;  // no multishot receive here (kernel < 6.0)
    } else if (res == -EBADF && rb->fixed && !c->closing.load(std::memory_order_acquire)) {
      rb->refused_fixed = true;
    } else if (res < 0 && res != -ECANCELED) {
      rb->end = res;
    }
    // Idle before the closer is woken: it checks read_buffer_in_flight() when it resumes.
    rb->state.store(kIdle, std::memory_order_release);  // see the invariants
    // A closer (a fiber of the owner) waits for the ops and this receive to end.
    if (c->closing.load(std::memory_order_acquire) && c->pending == 0 && c->drainer)
      weft::detail::unpark_local(std::exchange(c->drainer, nullptr));
    if (rb->reader) std::exchange(rb->reader, nullptr)->notify();
    return;
  }
  if (rb->queued >= kMaxQueued && !rb->cancel_sent) {
    rb->cancel_sent = true;
    weft::detail::cancel_op(c->owner, rb->ud);
  }
  if (rb->reader) std::exchange(rb->reader, nullptr)->notify();
}

// False when the ring had no room for the SQE (nothing armed: read plainly).
bool arm(SocketCore* c, Worker* w, BufRing* ring) {
  ReadBufferState* rb = c->read_buffer_state;
  if (rb->ring != ring) {  // the queue is empty here: rebind it
    if (rb->ring) rb->ring->release();
    ring->retain();
    rb->ring = ring;
  }
  if (rb->refused_fixed) {
    rb->refused_fixed = false;
    c->fixed_refused = true;
    detail::remove_slot(c);
  }
  const int slot = c->slot.load(std::memory_order_relaxed);
  rb->fixed = slot >= 0;
  rb->cancel_sent = false;
  detail::RecvCounters& counters = detail::recv_counters(w);  // before arming: it may throw
  rb->ud = weft::detail::arm_multishot_recv(w, c->fd, slot, &on_cqe, c);
  if (rb->ud == 0) return false;
  counters.arms.add();
  rb->state.store(kArmed, std::memory_order_release);  // see the invariants
  return true;
}

[[noreturn]] void throw_second_reader(const SocketCore* c, const char* op) {
  throw std::logic_error(std::string(op) + detail::subject_of(c) +
                         ": another fiber is already waiting in a buffered read of this socket");
}

enum class Next { chunk, end, plain };

// Waits until the queue has a chunk or the stream's end, arming the receive when
// `may_arm`; `plain` when the caller should use a plain receive instead.
Next wait_next(SocketCore* c, Worker* w, const char* op, Deadline deadline, bool may_arm) {
  for (;;) {
    ReadBufferState* rb = c->read_buffer_state;
    if (rb->head != BufRing::kNone) return Next::chunk;
    if (rb->end <= 0) return Next::end;
    if (rb->state.load(std::memory_order_relaxed) == kIdle) {  // owner thread: its own writes
      if (!may_arm) return Next::plain;
      BufRing* ring = weft::detail::buf_ring(w);
      if (!ring || !ring->multishot_ok) return Next::plain;
      if (rb->plain_left > 0) {  // the ring ran dry under this receive lately
        --rb->plain_left;
        return Next::plain;
      }
      if (!arm(c, w, ring)) return Next::plain;
    }
    if (rb->reader) throw_second_reader(c, op);
    weft::detail::Waiter waiter;
    rb->reader = &waiter;
    weft::detail::Waiter::Result r;
    bool closing;
    {
      const detail::OpCount counted(c);  // its leave() never switches: `c` stays usable below
      // The Waiter keeps a deadline in its int64 form, -1 for none.
      r = waiter.wait(deadline.is_none() ? -1 : deadline.ns());
      if (rb->reader == &waiter) rb->reader = nullptr;
      closing = c->closing.load(std::memory_order_acquire);
    }
    if (closing) {
      weft::detail::check_cancel();
      detail::throw_for(c, detail::Failure::closed, -ECANCELED, op);
    }
    if (r == weft::detail::Waiter::Result::cancelled) weft::detail::check_cancel();
    if (r == weft::detail::Waiter::Result::timed_out) detail::throw_for(c, detail::Failure::timed_out, -ETIMEDOUT, op);
  }
}

// The queue is empty and the stream has ended: 0 (every time), or its error (once).
void take_end(SocketCore* c, const char* op) {
  ReadBufferState* rb = c->read_buffer_state;
  if (rb->end < 0) {
    const int e = std::exchange(rb->end, 0);
    detail::throw_for(c, detail::Failure::errno_result, e, op);
  }
}

}  // namespace

ReadBuffer Socket::read_buffer(const char* op, Deadline deadline) {
  SocketCore* c = enter_ring_op(core_, op);
  Worker* w = c->owner;
  // One caller at a time, whichever way it reads: the rule must not hang on the
  // engine, the config or a dry ring.
  if (c->in_read_buffer) throw_second_reader(c, op);
  // Reset as the call returns or throws: nothing switches between the op's end and
  // then, so `c` is still live (a closer frees it only after it resumes).
  struct Inside {
    SocketCore* c;
    explicit Inside(SocketCore* core) noexcept : c(core) { c->in_read_buffer = true; }
    ~Inside() { c->in_read_buffer = false; }
    Inside(const Inside&) = delete;
    Inside& operator=(const Inside&) = delete;
  } inside(c);
  // A worker with no buffer ring (the epoll engine's, or one configured without)
  // reads plainly at once, unless this socket has a queue from one: the state is
  // made, and touched per read, only where a receive can be armed.
  if (c->read_buffer_state || weft::detail::buf_ring(w)) {
    if (!c->read_buffer_state) c->read_buffer_state = new ReadBufferState;
    switch (wait_next(c, w, op, deadline, true)) {
      case Next::chunk: {
        ReadBufferState* rb = c->read_buffer_state;
        BufRing* ring = rb->ring;
        const std::uint32_t off = rb->off;
        const std::uint16_t bid = rb->pop();
        ring->retain();
        return ReadBuffer(ring, bid, ring->data(bid) + off, ring->len(bid) - off);
      }
      case Next::end:
        take_end(c, op);
        return {};
      case Next::plain:
        break;
    }
  }
  // No ring buffer to be had: one plain receive into a heap buffer of that size.
  detail::recv_counters(w).plain.add();
  const unsigned cfg_size = weft::detail::worker_config(w).recv_buffer_size;
  const std::size_t size = cfg_size ? cfg_size : 16384;
  HeapLease heap(size);
  const IoOp io = IoOp::transfer(IoKind::recv, c->fd, heap.p, static_cast<std::uint32_t>(size), 0, deadline);
  const int res = run(op, io, POLLIN);
  if (res == 0) return {};
  return ReadBuffer(std::exchange(heap.p, nullptr), size, static_cast<std::size_t>(res));
}

bool Socket::read_queued(const char* op, void* buf, std::size_t len, Deadline deadline, std::size_t* got) {
  SocketCore* c = core_;
  if (!c || !detail::read_buffer_serves_reads(c)) return false;
  enter_ring_op(c, op);
  Worker* w = c->owner;
  switch (wait_next(c, w, op, deadline, false)) {
    case Next::plain:
      return false;
    case Next::end:
      take_end(c, op);
      *got = 0;
      return true;
    case Next::chunk:
      break;
  }
  ReadBufferState* rb = c->read_buffer_state;
  BufRing* ring = rb->ring;
  auto* out = static_cast<char*>(buf);
  std::size_t copied = 0;
  while (copied < len && rb->head != BufRing::kNone) {
    const std::uint16_t bid = rb->head;
    const std::size_t n = std::min<std::size_t>(len - copied, ring->len(bid) - rb->off);
    std::memcpy(out + copied, ring->data(bid) + rb->off, n);
    copied += n;
    rb->off += static_cast<std::uint32_t>(n);
    if (rb->off == ring->len(bid)) ring->give_back(rb->pop());
  }
  *got = copied;
  return true;
}

bool Socket::read_queued_pending() const noexcept {
  return core_ && detail::read_buffer_serves_reads(core_);
}

bool Socket::read_queued_ready() const noexcept {
  return core_ && core_->read_buffer_state && core_->read_buffer_state->head != BufRing::kNone;
}

void ReadBuffer::reset() noexcept {
  if (ring_) {
    ring_->put(bid_, t_state.worker == ring_->owner());
    ring_->release();
    ring_ = nullptr;
  }
  if (heap_) give_heap(std::exchange(heap_, nullptr), heap_size_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace weft::net
