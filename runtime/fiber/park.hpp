// weft/runtime/fiber/park.hpp — the park/wake contract: what the layers above a
// worker (the Waiter, joins, Timer, sleep, sync/, net/) need from the engine that
// runs their fibers. Declared here, defined by the engine (runtime/uring/ today):
// bound at link time, so parking and unparking cost a direct call, never a virtual one.
//
// Invariants (the engine keeps them):
//  - A parked fiber is unparked exactly once per park, by whoever claimed its wait
//    (a notifier, a deadline, or its cancel hook); an unpark of a fiber that is not
//    parked aborts with a message.
//  - A cancel hook runs on the fiber's worker (scheduler or fiber context) when the
//    parked fiber is cancelled and the cancellation is not deferred; it must claim
//    the wait and unpark the fiber, or leave that to whoever already claimed it.
//  - Deadlines and the *_local calls are for the calling worker's own thread; a
//    deadline's node is touched only there while it is queued.
#pragma once

#include <cstdint>

#include <weft/runtime/fiber/fiber.hpp>
#include <weft/runtime/fiber/timer_node.hpp>

namespace weft::detail {

// ---- the running fiber (fiber context) ----
/// Parks the running fiber until unparked; `hook(fiber, hook_arg)` runs if it is
/// cancelled meanwhile. `reason` names the wait in dumps and shutdown reports.
void park_running(const char* reason, CancelHook hook, void* hook_arg);
/// Lets the other ready fibers of the worker run, then returns.
void yield_running();
/// Parks the running fiber until `deadline_ns` (CLOCK_MONOTONIC); throws
/// FiberCancelled if it is cancelled (before or while it sleeps).
void sleep_running_until(std::int64_t deadline_ns);
/// Throws FiberCancelled if the running fiber was cancelled (and the cancellation
/// is not deferred); nothing outside a fiber.
void check_cancel();

// ---- wakes ----
/// Unparks `f`, parked on any worker, from any thread (local or remote path).
void unpark(FiberBase* f) noexcept;
/// Unparks `f`, a parked fiber of the calling worker (its thread, any context).
void unpark_local(FiberBase* f) noexcept;

// ---- deadlines (the calling worker's thread) ----
/// Arms `n` on the calling worker's timer heap to fire at `deadline_ns`, moving it
/// if it is armed already. fire_ then runs there, in scheduler context.
void arm_deadline(TimerNode* n, std::int64_t deadline_ns);
/// Removes `n` from the heap if it is queued (it will not fire).
void disarm_deadline(TimerNode* n) noexcept;

// ---- where a fiber runs (the worker is opaque: compare it, name it) ----
/// The worker's index in its runtime.
unsigned worker_index(const Worker* w) noexcept;
/// The runtime the worker belongs to (name and id: runtime_name, runtime_id).
const Runtime& worker_runtime(const Worker* w) noexcept;

}  // namespace weft::detail
