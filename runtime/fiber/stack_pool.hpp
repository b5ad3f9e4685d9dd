// weft/runtime/fiber/stack_pool.hpp — pooled, lazily committed, guarded fiber stacks.
//
// Invariants:
//  - One StackPool per Evented worker; only that worker's thread calls it (no locks).
//  - Every stack handed out has at least one guard page directly below `lo`
//    (the stack grows down from `top()` toward the guard). No unguarded stack is
//    ever handed out.
//  - Guard mode `madvise` (Linux 6.13+, MADV_GUARD_INSTALL = 102): stacks are carved
//    from chunks, one anonymous MAP_NORESERVE mapping per chunk; guards cost no
//    mapping, so a million guarded stacks need ~1M/stacks_per_chunk mappings.
//  - Guard mode `mprotect` (fallback): every guard splits a mapping (2 VMAs per
//    stack), so at most `mprotect_budget` such stacks may exist at once; past it
//    acquire() fails with a clear error naming the budget and the remedy.
//  - Memory is committed lazily by the kernel on first touch. Released stacks go on
//    a LIFO free list; beyond `cache_committed` free stacks, released stacks are
//    MADV_DONTNEED'ed (RSS returned, guard kept: guards survive MADV_DONTNEED).
//    Stacks are never unmapped before the pool dies, so the pool's mappings stay at
//    their peak (in mprotect mode: 2 x the most stacks ever live, <= 2 x budget).
//  - Every stack handed out is registered with valgrind (when built with it),
//    addressable to memcheck, and ASan-unpoisoned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <weft/runtime/config.hpp>

namespace weft::detail {

struct StackPoolConfig {
  std::size_t stack_size = 64 * 1024;  ///< usable bytes per stack, rounded up to pages
  unsigned guard_pages = 1;            ///< guard pages below every stack (>= 1)
  GuardMode mode = GuardMode::automatic;
  std::size_t mprotect_budget = 16384;  ///< max live mprotect-guarded stacks (2 VMAs each)
  std::size_t cache_committed = 128;    ///< free stacks kept committed; the rest are DONTNEED'ed
  std::size_t stacks_per_chunk = 256;   ///< madvise mode: stacks carved from one mapping
};

/// A fiber stack. [lo, lo + size) is usable; [guard_lo, lo) is the guard.
struct Stack {
  void* lo = nullptr;
  std::size_t size = 0;
  void* guard_lo = nullptr;
  std::size_t guard_size = 0;
  [[nodiscard]] void* top() const { return static_cast<char*>(lo) + size; }
  [[nodiscard]] bool valid() const { return lo != nullptr; }
};

/// True when this kernel accepts madvise(MADV_GUARD_INSTALL). Probed once, cached.
bool kernel_has_guard_install() noexcept;

class StackPool {
 public:
  /// Throws std::system_error when `mode` is madvise and the kernel lacks it.
  explicit StackPool(const StackPoolConfig& cfg);
  ~StackPool();  ///< unmaps everything; stacks still out are a bug (logged)
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  /// A stack from the free list, else a new one. Throws std::system_error
  /// (ENOMEM) with a message naming the cause: mmap failure, or the mprotect
  /// guard budget reached (with the budget and how to raise it).
  Stack acquire();
  /// Returns a stack obtained from acquire() of this pool.
  void release(Stack s) noexcept;

  [[nodiscard]] GuardMode mode() const { return mode_; }    ///< madvise or mprotect, never automatic
  [[nodiscard]] std::size_t live() const { return live_; }  ///< handed out now
  [[nodiscard]] std::size_t cached() const { return free_.size(); }
  [[nodiscard]] std::size_t mappings() const { return mappings_; }  ///< VMAs this pool created
  [[nodiscard]] std::size_t stack_size() const { return stack_size_; }
  [[nodiscard]] std::size_t guard_size() const { return guard_size_; }

 private:
  struct Chunk {
    void* base;
    std::size_t bytes;
  };                              ///< one mmap()ed region
  void grow_madvise();            ///< maps a fresh chunk of per_chunk_ slots
  Stack carve_madvise();          ///< next slot of the newest chunk; installs its guard
  Stack make_mprotect_stack();    ///< one mapping [guard][stack], guard PROT_NONE
  void reserve_new_stack();       ///< makes room in the bookkeeping (throws before any syscall)
  Stack adopt_slot(char* guard);  ///< a fresh slot becomes a stack (cannot throw)

  GuardMode mode_;
  std::size_t stack_size_;
  std::size_t guard_size_;
  std::size_t budget_;
  std::size_t cache_committed_;
  std::size_t per_chunk_;
  std::size_t live_ = 0;
  std::size_t mappings_ = 0;
  std::size_t existing_ = 0;            // stacks ever carved/mapped: live_ + free_.size()
  std::size_t next_slot_ = 0;           // madvise mode: next uncarved slot of chunks_.back()
  std::vector<Stack> free_;             // LIFO: the hottest stack is reused first
  std::vector<Chunk> chunks_;           // every mapping, unmapped only by the destructor
  std::vector<unsigned> valgrind_ids_;  // VALGRIND_STACK_REGISTER ids (only under valgrind)
};

}  // namespace weft::detail
