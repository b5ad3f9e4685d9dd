// weft/runtime/stats.hpp — counters a Runtime reports through Runtime::stats().
//
// Each worker owns its counters and is the only writer (relaxed stores); readers
// on other threads see a recent value, never a torn one.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include <weft/runtime/config.hpp>

namespace weft {

struct Stats {
  Engine engine = Engine::io_uring;  ///< the engine the workers run (never `automatic`)
  /// Why that engine: asked for (Config::engine, WEFT_ENGINE), or the cause that
  /// made `automatic` fall back to epoll (the same text as its log line).
  std::string engine_reason;
  std::uint64_t fibers_alive = 0;  ///< spawned and not yet finished
  std::uint64_t fibers_spawned = 0;
  std::uint64_t switches = 0;  ///< fiber activations (switches into a fiber), counted per tick
  std::uint64_t sqes_submitted = 0;
  std::uint64_t cqes_reaped = 0;
  std::uint64_t stale_completions = 0;  ///< CQEs whose slot generation did not match
  std::uint64_t sq_full = 0;            ///< times the SQ was full and flushed early
  std::uint64_t sq_waits = 0;           ///< times a fiber went through a tick for room in a full SQ
  std::uint64_t cq_overflow = 0;        ///< ticks that saw the CQ overflow flag
  std::uint64_t enters = 0;             ///< io_uring_enter calls
  std::uint64_t epoll_waits = 0;        ///< epoll_wait calls (the epoll engine's enters)
  std::uint64_t wakes = 0;              ///< cross-thread wakes received
  std::uint64_t timers_fired = 0;
  std::uint64_t stalls = 0;  ///< stall reports
  std::uint64_t stacks_live = 0;
  std::uint64_t stack_mappings = 0;    ///< VMAs the stack pools created
  std::uint64_t files_registered = 0;  ///< sockets installed in the rings' file tables now
  std::uint64_t unjoined_exceptions = 0;
  // Buffered reads (TcpStream::read_buffer and the reads that share its queue):
  std::uint64_t recv_arms = 0;     ///< multishot receives armed
  std::uint64_t recv_starved = 0;  ///< armed receives the kernel ended because the buffer ring ran dry
  std::uint64_t recv_plain = 0;    ///< buffered reads served by a plain receive into a heap buffer instead
  // The explorer (Config::explore; zero when it is off):
  std::uint64_t explore_yields = 0;   ///< yields it injected
  std::uint64_t faults_injected = 0;  ///< faults it injected
};

}  // namespace weft

namespace weft::detail {

/// A counter with one writer (its worker) and racy-but-safe readers (stats()).
class Counter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(std::uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  void set(std::uint64_t n) noexcept { v_.store(n, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  // relaxed: statistics only; no other data is published through them.
  std::atomic<std::uint64_t> v_{0};
};

/// Exceptions that ended a fiber nobody joined (process-wide; each is also logged).
std::uint64_t unjoined_exceptions_total() noexcept;

}  // namespace weft::detail
