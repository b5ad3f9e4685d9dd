// runtime/fiber/fiber.cpp — the fiber control block: names, references, joining.
#include <weft/runtime/fiber/fiber.hpp>

#include <algorithm>
#include <mutex>

#include <weft/runtime/domain.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/log.hpp>
#include <weft/runtime/stats.hpp>
#include <weft/runtime/uring/worker.hpp>

namespace weft::detail {

namespace {
// relaxed: a statistic; each event is also logged.
std::atomic<std::uint64_t> g_unjoined{0};

// The hazard slot of observe_running_name(): the fiber an observer is reading.
// Protocol (Dekker): the observer stores the hazard, then re-checks that the
// fiber still runs (both seq_cst); the deleter's last switch away from the fiber
// precedes its seq_cst fence and its load of the hazard. So either the deleter
// sees the hazard and waits, or the observer sees the fiber gone and reads nothing.
std::atomic<const FiberBase*> g_hazard{nullptr};
std::mutex g_hazard_mu;  // one observer at a time owns the slot

bool is_cancellation(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const FiberCancelled&) {
    return true;
  } catch (...) {
    return false;
  }
}
}  // namespace

std::uint64_t unjoined_exceptions_total() noexcept { return g_unjoined.load(std::memory_order_relaxed); }

std::string FiberBase::display_name() const {
  if (name_[0]) return name_;
  return "fiber#" + std::to_string(id_);
}

void FiberBase::set_name(std::string_view n) {
  const std::size_t len = std::min(n.size(), sizeof name_ - 1);
  if (len) std::memcpy(name_, n.data(), len);
  name_[len] = '\0';
}

void FiberBase::release_ref() noexcept {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (error_ && !joined_ && !is_cancellation(error_)) {
    g_unjoined.fetch_add(1, std::memory_order_relaxed);
    try {
      std::rethrow_exception(error_);
    } catch (const std::exception& e) {
      log::logger().error("fiber {} ended with an exception nobody joined: {}", display_name(), e.what());
    } catch (...) {
      log::logger().error("fiber {} ended with a non-std exception nobody joined", display_name());
    }
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  while (g_hazard.load(std::memory_order_seq_cst) == this) {
    // An observer is reading our name: it holds the slot for a few instructions.
  }
  delete this;
}

void FiberBase::rethrow_if_failed() {
  joined_ = true;
  if (error_) std::rethrow_exception(error_);
}

void FiberBase::wait_done() {
  if (is_done()) return;
  ThreadState& ts = t_state;
  if (ts.fiber) {
    FiberBase* self = ts.fiber;
    if (self == this) throw std::logic_error("weft: a fiber cannot join itself");
    std::uintptr_t expected = kJoinNone;
    // acq_rel: publish our registration to the finisher / see its result if done.
    if (!join_word_.compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(self),
                                            std::memory_order_acq_rel, std::memory_order_acquire)) {
      if (expected == kJoinDone) return;
      throw std::logic_error("weft: fiber joined twice");
    }
    ts.worker->park_current(
        "join",
        [](FiberBase* joiner, void* arg) {
          // Claim the wait back; if the finisher already took it, it unparks us.
          auto* target = static_cast<FiberBase*>(arg);
          std::uintptr_t me = reinterpret_cast<std::uintptr_t>(joiner);
          if (target->join_word_.compare_exchange_strong(me, kJoinNone, std::memory_order_acq_rel))
            joiner->worker_->unpark_local(joiner);
        },
        this);
    if (join_word_.load(std::memory_order_acquire) != kJoinDone) {
      ts.worker->check_cancel();
      throw std::logic_error("weft: join woke before the fiber finished");
    }
    return;
  }
  if (ts.worker)
    throw CrossRuntimeError(
        "weft: join() called in a worker's scheduler context (a Timer callback) would block "
        "the worker; join from a fiber (weft::spawn) instead");
  std::uintptr_t expected = kJoinNone;
  if (!join_word_.compare_exchange_strong(expected, kJoinThread, std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
    if (expected == kJoinDone) return;
    throw std::logic_error("weft: fiber joined twice");
  }
  // acquire: pairs with the finisher's acq_rel exchange, so the result is visible.
  while (join_word_.load(std::memory_order_acquire) != kJoinDone) join_word_.wait(kJoinThread, std::memory_order_acquire);
}

std::string observe_running_name(const std::atomic<FiberBase*>& running, FiberBase* f) {
  std::lock_guard lk(g_hazard_mu);
  g_hazard.store(f, std::memory_order_seq_cst);
  std::string name;
  if (running.load(std::memory_order_seq_cst) == f) name = f->display_name();
  g_hazard.store(nullptr, std::memory_order_seq_cst);
  return name;
}

void require_fiber(const char* operation) {
  if (!t_state.fiber) throw_not_in_fiber(operation);
}

void start_local(FiberBase* f, const SpawnOptions& opts) { t_state.worker->start_fiber(f, opts); }

}  // namespace weft::detail
