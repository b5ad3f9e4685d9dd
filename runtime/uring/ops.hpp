// weft/runtime/uring/ops.hpp — what net/ asks of the worker a socket lives on,
// without the Worker: a slot for net/'s own per-worker state.
//
// Invariants:
//  - The net slot is set once, by the worker's thread; the worker frees it when it
//    is destroyed and adds its counters into Runtime::stats().
#pragma once

#include <memory>

#include <weft/runtime/fiber/context.hpp>
#include <weft/runtime/stats.hpp>

namespace weft::detail {

// ---- net/'s per-worker state ----
/// What net/ keeps on each worker (its receive counters): the worker owns it and
/// adds it into its stats.
class WorkerSlot {
 public:
  WorkerSlot() = default;
  WorkerSlot(const WorkerSlot&) = delete;
  WorkerSlot& operator=(const WorkerSlot&) = delete;
  virtual ~WorkerSlot() = default;
  /// Any thread (Runtime::stats()): adds this slot's counters into `s`.
  virtual void add_stats(Stats& s) const noexcept = 0;
};
/// The worker's net slot, null until set.
WorkerSlot* net_slot(Worker* w) noexcept;
/// Sets the worker's net slot (its thread, once).
void set_net_slot(Worker* w, std::unique_ptr<WorkerSlot> slot) noexcept;

}  // namespace weft::detail
