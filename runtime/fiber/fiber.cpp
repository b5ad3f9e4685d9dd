// runtime/fiber/fiber.cpp — the fiber control block: names, references, joining.
#include <algorithm>

#include <weft/runtime/domain.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/fiber/fiber.hpp>
#include <weft/runtime/fiber/park.hpp>
#include <weft/runtime/log.hpp>
#include <weft/runtime/stats.hpp>

namespace weft::detail {

namespace {
// relaxed: a statistic; each event is also logged.
std::atomic<std::uint64_t> g_unjoined{0};

// Per-thread cache of fiber blocks by 64-byte size class (blocks freed on one
// thread may be reused by another: a freed block carries no state). ASan builds
// bypass it so use-after-free of a fiber block is still caught.
constexpr std::size_t kClassBytes = 64;
constexpr std::size_t kClasses = 8;        // blocks up to 512 bytes
constexpr std::uint32_t kCacheMax = 4096;  // per class and thread
struct FreeBlock {
  FreeBlock* next;
};
struct BlockCache {
  FreeBlock* head[kClasses] = {};
  std::uint32_t count[kClasses] = {};
  ~BlockCache() {
    for (auto& h : head)
      while (FreeBlock* b = h) {
        h = b->next;
        ::operator delete(b);
      }
  }
};
thread_local BlockCache t_blocks;
std::size_t size_class(std::size_t size) {
  return (size + kClassBytes - 1) / kClassBytes - 1;
}

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

std::uint64_t unjoined_exceptions_total() noexcept {
  return g_unjoined.load(std::memory_order_relaxed);
}

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
  // A count of 1 is the caller's reference alone: only an owner adds references,
  // so none can appear now, and the locked decrement is skipped (the usual case:
  // the handle lets go after the worker). acquire: the other owner's writes,
  // published by its acq_rel decrement, are visible before the block is freed.
  if (refs_.load(std::memory_order_acquire) != 1 && refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
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
  delete this;
}

void FiberBase::rethrow_if_failed() {
  joined_ = true;
  // Moved out: the joiner holds the only reference, so the last release_ref (maybe
  // the worker's, on another thread) never frees an exception the joiner is still
  // reading; that order would live only in the C++ runtime's reference count,
  // which TSan cannot see.
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void FiberBase::wait_done() {
  ThreadState& ts = t_state;
  // A Timer callback: refused even when the fiber is done (a blocking call there).
  if (ts.worker && !ts.fiber) throw_blocking_in_scheduler("weft::JoinHandle", "join()");
  if (is_done()) return;
  if (ts.fiber) {
    FiberBase* self = ts.fiber;
    if (self == this) throw std::logic_error("weft: a fiber cannot join itself");
    std::uintptr_t expected = kJoinNone;
    // acq_rel: publish our registration to the finisher / see its result if done.
    if (!join_word_.compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(self), std::memory_order_acq_rel,
                                            std::memory_order_acquire)) {
      if (expected == kJoinDone) return;
      throw std::logic_error("weft: fiber joined twice");
    }
    park_running(
        "join",
        [](FiberBase* joiner, void* arg) {
          // Claim the wait back; if the finisher already took it, it unparks us.
          auto* target = static_cast<FiberBase*>(arg);
          std::uintptr_t me = reinterpret_cast<std::uintptr_t>(joiner);
          if (target->join_word_.compare_exchange_strong(me, kJoinNone, std::memory_order_acq_rel))
            unpark_local(joiner);
        },
        this);
    if (join_word_.load(std::memory_order_acquire) != kJoinDone) {
      check_cancel();
      throw std::logic_error("weft: join woke before the fiber finished");
    }
    return;
  }
  std::uintptr_t expected = kJoinNone;
  if (!join_word_.compare_exchange_strong(expected, kJoinThread, std::memory_order_acq_rel,
                                          std::memory_order_acquire)) {
    if (expected == kJoinDone) return;
    throw std::logic_error("weft: fiber joined twice");
  }
  // acquire: pairs with the finisher's acq_rel exchange, so the result is visible.
  while (join_word_.load(std::memory_order_acquire) != kJoinDone)
    join_word_.wait(kJoinThread, std::memory_order_acquire);
}

void* FiberBase::operator new(std::size_t size) {
  const std::size_t c = size_class(size);
  if (!kAsan && c < kClasses) {
    BlockCache& cache = t_blocks;
    if (FreeBlock* b = cache.head[c]) {
      cache.head[c] = b->next;
      --cache.count[c];
      return b;
    }
    return ::operator new((c + 1) * kClassBytes);
  }
  return ::operator new(size);
}

void FiberBase::operator delete(void* p, std::size_t size) noexcept {
  const std::size_t c = size_class(size);
  if (!kAsan && c < kClasses) {
    BlockCache& cache = t_blocks;
    if (cache.count[c] < kCacheMax) {
      auto* b = static_cast<FreeBlock*>(p);
      b->next = cache.head[c];
      cache.head[c] = b;
      ++cache.count[c];
      return;
    }
  }
  ::operator delete(p);
}

// relaxed throughout: badges carry no other data; readers validate with the
// worker's switch epoch.
void FiberBadge::write(std::uint64_t fiber_id, const char* fiber_name) noexcept {
  std::uint64_t words[4] = {};
  std::memcpy(words, fiber_name, std::min<std::size_t>(std::strlen(fiber_name), sizeof words - 1));
  std::atomic_ref<std::uint64_t>(id).store(fiber_id, std::memory_order_relaxed);
  for (int i = 0; i < 4; ++i) std::atomic_ref<std::uint64_t>(name[i]).store(words[i], std::memory_order_relaxed);
}

std::string FiberBadge::read() const {
  std::uint64_t words[4];
  for (int i = 0; i < 4; ++i) words[i] = std::atomic_ref<const std::uint64_t>(name[i]).load(std::memory_order_relaxed);
  char buf[sizeof words + 1] = {};
  std::memcpy(buf, words, sizeof words);
  if (buf[0]) return std::string(buf, strnlen(buf, sizeof words));
  return "fiber#" + std::to_string(std::atomic_ref<const std::uint64_t>(id).load(std::memory_order_relaxed));
}

void require_fiber(const char* operation) {
  if (!t_state.fiber) throw_not_in_fiber(operation);
}

std::string current_fiber_name() {
  const FiberBase* f = t_state.fiber;
  return f ? f->display_name() : std::string();
}

}  // namespace weft::detail
