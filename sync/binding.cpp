// sync/binding.cpp — binding a primitive to its domain on first use, and the one
// message every cross-domain call gets (thrown, or printed before abort()).
#include <cstring>
#include <thread>

#include <weft/runtime/domain.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/fiber/park.hpp>
#include <weft/sync/binding.hpp>

namespace weft::detail {

namespace {

void copy_name(char (&dst)[32], std::string_view src) noexcept {
  const std::size_t n = src.size() < sizeof dst - 1 ? src.size() : sizeof dst - 1;
  if (n) std::memcpy(dst, src.data(), n);  // an empty string_view may carry a null data()
  dst[n] = '\0';
}

// By id, never by address: a Runtime later built in a destroyed one's storage is
// another domain.
std::uintptr_t word_of(const Runtime& rt) noexcept {
  return kRuntimeWordBase + static_cast<std::uintptr_t>(runtime_id(rt));
}

}  // namespace

std::uintptr_t refresh_caller_word() noexcept {
  Worker* w = t_state.worker;
  t_caller_cache.worker = w;
  t_caller_cache.word = word_of(worker_runtime(w));
  return t_caller_cache.word;
}

DomainBinding::DomainBinding(const char* kind, std::string_view name) noexcept : word_(kUnbound), kind_(kind) {
  copy_name(name_, name);
}

DomainBinding::DomainBinding(const char* kind, Runtime& rt, std::string_view name) : word_(word_of(rt)), kind_(kind) {
  copy_name(name_, name);
  copy_name(runtime_name_, runtime_name(rt));
}

DomainBinding::DomainBinding(const char* kind, ThreadedTag, std::string_view name) noexcept
    : word_(kThreaded), kind_(kind) {
  copy_name(name_, name);
}

std::uintptr_t DomainBinding::settled_word() const noexcept {
  // acquire: pairs with the binder's release store, so runtime_name_ is complete.
  std::uintptr_t w = word_.load(std::memory_order_acquire);
  while (w == kBinding) {  // a binder is copying a name: a few instructions away
    std::this_thread::yield();
    w = word_.load(std::memory_order_acquire);
  }
  return w;
}

void DomainBinding::slow_check(const char* op) const {
  const std::uintptr_t me = caller_word();
  if (me == kScheduler) throw_blocking_in_scheduler(what(), op);  // before binding anything
  std::uintptr_t w = settled_word();
  for (;;) {
    if (w == me) return;
    if (w != kUnbound) throw CrossRuntimeError(foreign_message(op));
    if (me == kThreaded) {
      // relaxed is enough on success: no data travels with kThreaded. On failure
      // the loop re-reads the winner's word with acquire.
      if (word_.compare_exchange_strong(w, kThreaded, std::memory_order_relaxed)) return;
    } else if (word_.compare_exchange_strong(w, kBinding, std::memory_order_relaxed)) {
      copy_name(runtime_name_, runtime_name(worker_runtime(t_state.worker)));
      word_.store(me, std::memory_order_release);  // publishes runtime_name_
      return;
    }
    w = settled_word();
  }
}

std::string DomainBinding::what() const {
  std::string s = kind_;
  if (name_[0]) s += std::string(" '") + name_ + "'";
  return s;
}

std::string DomainBinding::domain_name() const {
  const std::uintptr_t w = settled_word();
  if (w == kUnbound) return "unbound";
  if (w == kThreaded) return "Threaded";
  return std::string("Evented(runtime '") + runtime_name_ + "')";
}

std::string DomainBinding::foreign_message(const char* op) const {
  const std::uintptr_t mine = settled_word();
  const std::uintptr_t caller = caller_word();
  if (caller == kScheduler) return blocking_in_scheduler_message(what(), op);
  const std::string mine_name = domain_name();
  const bool same_name = mine != kThreaded && caller != kThreaded && mine_name == current_domain().name();
  std::string bridge;
  if (mine == kThreaded) {
    bridge =
        "A fiber must not block its worker thread on a Threaded primitive: run the blocking work on the pool "
        "with weft::offload(fn), or pass data between the sides through a weft::Channel.";
  } else if (caller == kThreaded) {
    bridge = std::string("A thread cannot park on a fiber primitive: run that code as a fiber of runtime '") +
             runtime_name_ +
             "' (Runtime::spawn or Runtime::block_on), or pass data between the sides through a weft::Channel.";
  } else {
    bridge = std::string(
                 "Fibers of one runtime cannot wait on another runtime's primitives: start the work on "
                 "runtime '") +
             runtime_name_ +
             "' with Runtime::spawn, or pass data between them through a weft::Channel (blocking work goes "
             "through weft::offload).";
  }
  return cross_domain_message(what() + " belongs to " + mine_name, bridge, op,
                              same_name ? " (another Runtime object with the same name)" : "");
}

void DomainBinding::die(const std::string& msg) const noexcept {
  fatal(msg);
}

void DomainBinding::abort_foreign(const char* op) const noexcept {
  try {
    die(foreign_message(op));
  } catch (...) {
    fatalf("%s: %s called from another domain", kind_, op);
  }
}

}  // namespace weft::detail
