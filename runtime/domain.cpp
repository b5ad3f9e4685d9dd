// runtime/domain.cpp — domain names, the caller in words and the Evented-only
// check's message. current_domain() is the engine's (runtime/uring/park.cpp).
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <weft/runtime/domain.hpp>
#include <weft/runtime/error.hpp>

namespace weft {

std::string Domain::name() const {
  if (kind == Kind::threaded) return "Threaded";
  const std::string rt = "runtime '" + (runtime ? detail::runtime_name(*runtime) : std::string("?")) + "'";
  if (kind == Kind::scheduler) return "Scheduler(" + rt + ", worker " + std::to_string(worker) + ")";
  return "Evented(" + rt + ")";
}

std::string describe_caller() {
  const Domain d = current_domain();
  if (d.runtime) {
    std::string where = "worker " + std::to_string(d.worker) + " of runtime '" + detail::runtime_name(*d.runtime) + "'";
    if (d.evented()) return "fiber '" + detail::current_fiber_name() + "' on " + where;
    return "the scheduler context (a Timer callback) of " + where;
  }
  char name[32] = "?";
  pthread_getname_np(pthread_self(), name, sizeof name);
  return "thread '" + std::string(name) + "' (tid " + std::to_string(::syscall(SYS_gettid)) + ")";
}

namespace detail {

std::string cross_domain_message(std::string_view refused, std::string_view bridge, std::string_view op,
                                 std::string_view domain_note) {
  std::string m(refused);
  m += ", but the caller";
  if (!op.empty()) {
    m += " of ";
    m += op;
  }
  m += " is " + describe_caller() + ", which is " + current_domain().name();
  m += domain_note;
  m += ". ";
  m += bridge;
  return m;
}

void throw_not_in_fiber(const char* operation) {
  const std::string refused =
      std::string(operation) + " is Evented-only: it must be called from a fiber of a weft::Runtime";
  if (current_domain().worker >= 0)  // the scheduler context: not a fiber, and it must not block
    throw CrossRuntimeError(cross_domain_message(
        refused, "Start the work as a fiber from here with Runtime::spawn or Runtime::spawn_detached."));
  throw CrossRuntimeError(
      cross_domain_message(refused,
                           "Bridges: start the work with Runtime::spawn or Runtime::block_on from this thread, or "
                           "pass data to a fiber through a weft::Channel."));
}

std::string blocking_in_scheduler_message(const std::string& what, const char* op) {
  return cross_domain_message(
      what + ": " + op +
          " may block, which a worker's scheduler context must never do (the worker's other fibers, and its "
          "shutdown, would wait behind it)",
      "Start a fiber for the blocking part (Runtime::spawn or Runtime::spawn_detached work from here), or use a call "
      "that never blocks: try_send/try_recv, try_acquire, and the signals (set, reset, release, increment_and_wake, "
      "notify_one/notify_all).");
}

void throw_blocking_in_scheduler(const std::string& what, const char* op) {
  throw CrossRuntimeError(blocking_in_scheduler_message(what, op));
}

}  // namespace detail
}  // namespace weft
