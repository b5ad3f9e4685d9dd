// runtime/fiber/stack_pool.cpp — pooled, lazily committed, guarded fiber stacks.
//
// Invariants (beyond the header's):
//  - Slot layout, both modes: [guard_size_ guard][stack_size_ usable], the usable
//    area directly above its guard. madvise mode packs per_chunk_ slots into one
//    chunk mapping and carves them lazily, in address order (next_slot_); mprotect
//    mode maps one slot per stack.
//  - existing_ == live_ + free_.size(): a carved stack never goes back to its chunk
//    and is never unmapped before the destructor. In mprotect mode existing_ is the
//    number of guarded mappings and never exceeds budget_.
//  - free_.capacity() >= existing_, so release() (noexcept) never allocates.
//  - No page is ever touched here: the kernel commits stack memory on first use.
//  - Syscalls report -1/errno; pool_error() is the one place that turns them into
//    std::system_error (always ENOMEM from acquire(), as the header promises).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <weft/runtime/error.hpp>
#include <weft/runtime/fiber/sanitizer.hpp>
#include <weft/runtime/fiber/stack_pool.hpp>
#include <weft/runtime/log.hpp>

#include "weft_build_config.hpp"

#if WEFT_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#endif

namespace weft::detail {
namespace {

constexpr int kMadvGuardInstall = 102;  // MADV_GUARD_INSTALL, Linux 6.13+
#ifdef MADV_GUARD_INSTALL
static_assert(MADV_GUARD_INSTALL == kMadvGuardInstall);
#endif

// MAP_STACK: no transparent huge pages (Linux 6.7+), so touching one stack never
// commits 2 MiB worth of its neighbours.
constexpr int kMapFlags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK;

std::size_t page_size() {
  static const auto kPage = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return kPage;
}

std::size_t round_up(std::size_t n, std::size_t to) {
  return (n + to - 1) / to * to;
}

/// The ENOMEM system_error for an acquire()/constructor failure. `err` is the errno
/// of the failing syscall (0: none); when it is not ENOMEM it is named in the text.
[[noreturn]] void pool_error(int err, std::string what) {
  if (err != 0 && err != ENOMEM) what += std::string(" (") + std::strerror(err) + ")";
  throw_errno(-ENOMEM, what.c_str());
}

std::string max_map_count() {
  std::string v = "?";
  if (std::FILE* f = std::fopen("/proc/sys/vm/max_map_count", "re")) {
    long n = 0;
    if (std::fscanf(f, "%ld", &n) == 1) v = std::to_string(n);
    std::fclose(f);
  }
  return v;
}

/// Grows `v` geometrically to hold `n` elements.
template <class V>
void reserve_for(V& v, std::size_t n) {
  if (v.capacity() < n) v.reserve(std::max({std::size_t{64}, n, 2 * v.capacity()}));
}

/// A fresh mapping may reuse addresses whose ASan shadow someone left poisoned.
/// (Large ranges are cheap: ASan remaps their shadow instead of writing it.)
void unpoison_fresh([[maybe_unused]] void* base, [[maybe_unused]] std::size_t bytes) {
#if WEFT_ASAN
  ASAN_UNPOISON_MEMORY_REGION(base, bytes);
#endif
}

}  // namespace

bool kernel_has_guard_install() noexcept {
  // A function-local static: probed once per process, thread-safe by the language.
  static const bool kHas = [] {
    const std::size_t page = page_size();
    void* p = ::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, kMapFlags, -1, 0);
    if (p == MAP_FAILED) return false;
    const bool ok = ::madvise(p, page, kMadvGuardInstall) == 0;
    ::munmap(p, 2 * page);
    return ok;
  }();
  return kHas;
}

StackPool::StackPool(const StackPoolConfig& cfg)
    : mode_(cfg.mode),
      stack_size_(round_up(std::max<std::size_t>(cfg.stack_size, 1), page_size())),
      guard_size_(std::max(cfg.guard_pages, 1U) * page_size()),
      budget_(cfg.mprotect_budget),
      cache_committed_(cfg.cache_committed),
      per_chunk_(std::max<std::size_t>(cfg.stacks_per_chunk, 1)) {
  if (mode_ == GuardMode::automatic) {
    mode_ = kernel_has_guard_install() ? GuardMode::madvise : GuardMode::mprotect;
  } else if (mode_ == GuardMode::madvise && !kernel_has_guard_install()) {
    throw StartupError(ENOTSUP,
                       "weft: GuardMode::madvise requires MADV_GUARD_INSTALL, which this kernel "
                       "lacks (Linux 6.13+); use GuardMode::automatic to fall back to "
                       "mprotect guards (2 mappings per stack, budgeted)");
  }
  next_slot_ = per_chunk_;  // no chunk yet: the first carve maps one
}

StackPool::~StackPool() {
  if (live_ != 0) {
    try {  // a destructor: a failing logger must not end the process
      log::logger().error(
          "internal error: fiber stack pool destroyed with {} stacks still in use; unmapping them anyway", live_);
    } catch (...) {
    }
  }
#if WEFT_VALGRIND
  for (unsigned id : valgrind_ids_) VALGRIND_STACK_DEREGISTER(id);
#endif
  for (const Chunk& c : chunks_) {
#if WEFT_ASAN
    // Fibers' frames may have left poison; the next owner of this range must not see it.
    ASAN_UNPOISON_MEMORY_REGION(c.base, c.bytes);
#endif
    ::munmap(c.base, c.bytes);
  }
}

Stack StackPool::acquire() {
  Stack s;
  if (!free_.empty()) [[likely]] {
    s = free_.back();
    free_.pop_back();
#if WEFT_ASAN
    // The previous fiber's frames may have left poison on this stack.
    ASAN_UNPOISON_MEMORY_REGION(s.lo, s.size);
#endif
#if WEFT_VALGRIND
    // Memcheck took the frames the previous fiber returned from as gone (no
    // access); the next context is made there, from another stack. (The ids are
    // kept only under valgrind: a cheaper test than RUNNING_ON_VALGRIND here.)
    if (!valgrind_ids_.empty()) VALGRIND_MAKE_MEM_UNDEFINED(s.lo, s.size);
#endif
  } else if (mode_ == GuardMode::madvise) {
    s = carve_madvise();
  } else {
    s = make_mprotect_stack();
  }
  ++live_;
  return s;
}

void StackPool::release(Stack s) noexcept {
  assert(s.valid() && s.size == stack_size_ && live_ > 0);
  --live_;
  if (free_.size() >= cache_committed_) {
    // Give the pages back; the guard (a marker or a PROT_NONE mapping) stays.
    ::madvise(s.lo, s.size, MADV_DONTNEED);
  }
  free_.push_back(s);  // never reallocates: capacity >= existing_
}

void StackPool::grow_madvise() {
  const std::size_t bytes = per_chunk_ * (guard_size_ + stack_size_);
  reserve_for(chunks_, chunks_.size() + 1);
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, kMapFlags, -1, 0);
  if (base == MAP_FAILED) {
    pool_error(errno, "weft: mmap of a " + std::to_string(bytes) + "-byte fiber stack chunk (" +
                          std::to_string(per_chunk_) + " stacks of " + std::to_string(stack_size_) + " bytes + " +
                          std::to_string(guard_size_) + "-byte guards) failed with " + std::to_string(live_) +
                          " stacks live; check ulimit -v and " + "vm.overcommit_memory, or lower Config::stack_size");
  }
  unpoison_fresh(base, bytes);
  chunks_.push_back({base, bytes});
  ++mappings_;
  next_slot_ = 0;
}

Stack StackPool::carve_madvise() {
  reserve_new_stack();
  if (next_slot_ == per_chunk_) grow_madvise();
  char* slot = static_cast<char*>(chunks_.back().base) + next_slot_ * (guard_size_ + stack_size_);
  // The guard costs no mapping: the chunk stays one VMA however many guards it holds.
  if (::madvise(slot, guard_size_, kMadvGuardInstall) != 0) {
    pool_error(errno, "weft: madvise(MADV_GUARD_INSTALL) of a fiber stack guard failed with " + std::to_string(live_) +
                          " stacks live");
  }
  ++next_slot_;
  return adopt_slot(slot);
}

Stack StackPool::make_mprotect_stack() {
  if (existing_ >= budget_) {
    const bool forced = kernel_has_guard_install();
    pool_error(0, "weft: fiber stack guard budget reached (" + std::to_string(budget_) +
                      " mprotect-guarded stacks, 2 mappings each, vm.max_map_count=" + max_map_count() + "); " +
                      (forced ? "GuardMode::mprotect was forced although this kernel has "
                                "MADV_GUARD_INSTALL (use GuardMode::automatic)"
                              : "this kernel lacks MADV_GUARD_INSTALL (Linux 6.13+)") +
                      "; raise Config::mprotect_guard_budget and vm.max_map_count, or run "
                      "fewer live fibers");
  }
  reserve_new_stack();
  reserve_for(chunks_, chunks_.size() + 1);
  const std::size_t bytes = guard_size_ + stack_size_;
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, kMapFlags, -1, 0);
  if (base == MAP_FAILED) {
    pool_error(errno, "weft: mmap of a " + std::to_string(bytes) + "-byte fiber stack failed with " +
                          std::to_string(live_) + " stacks live; check ulimit -v and " +
                          "vm.overcommit_memory, or lower Config::stack_size");
  }
  // Splits the mapping in two: this is what the budget counts.
  if (::mprotect(base, guard_size_, PROT_NONE) != 0) {
    const int err = errno;
    ::munmap(base, bytes);
    pool_error(err, "weft: mprotect(PROT_NONE) of a fiber stack guard failed with " + std::to_string(existing_) +
                        " mprotect-guarded stacks (2 mappings each); " + "the process probably hit vm.max_map_count=" +
                        max_map_count() + " before Config::mprotect_guard_budget=" + std::to_string(budget_) +
                        "; raise vm.max_map_count or lower the budget");
  }
  unpoison_fresh(base, bytes);
  chunks_.push_back({base, bytes});
  mappings_ += 2;
  return adopt_slot(static_cast<char*>(base));
}

void StackPool::reserve_new_stack() {
  // Throws (bad_alloc) before any syscall, so acquire() is all-or-nothing.
  reserve_for(free_, existing_ + 1);
#if WEFT_VALGRIND
  if (RUNNING_ON_VALGRIND) reserve_for(valgrind_ids_, existing_ + 1);
#endif
}

Stack StackPool::adopt_slot(char* guard) {
  Stack s{guard + guard_size_, stack_size_, guard, guard_size_};
  ++existing_;
#if WEFT_VALGRIND
  // Registered once for the life of the mapping; deregistered before munmap.
  if (RUNNING_ON_VALGRIND) valgrind_ids_.push_back(VALGRIND_STACK_REGISTER(s.lo, s.top()));
#endif
  return s;
}

}  // namespace weft::detail
