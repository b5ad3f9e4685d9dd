// runtime/domain.cpp — domain identity and the Evented-only check's message.
#include <weft/runtime/domain.hpp>

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <weft/runtime/error.hpp>
#include <weft/runtime/runtime.hpp>
#include <weft/runtime/uring/worker.hpp>

namespace weft {

std::string Domain::name() const {
  if (kind == Kind::threaded) return "Threaded";
  return "Evented(runtime '" + (runtime ? runtime->name() : std::string("?")) + "')";
}

Domain current_domain() noexcept {
  const auto& ts = detail::t_state;
  Domain d;
  if (ts.fiber && ts.worker) {
    d.kind = Domain::Kind::evented;
    d.runtime = &ts.worker->runtime();
    d.runtime_id = d.runtime->id();
    d.worker = static_cast<int>(ts.worker->index());
  }
  return d;
}

std::string describe_caller() {
  const auto& ts = detail::t_state;
  if (ts.worker) {
    std::string where = "worker " + std::to_string(ts.worker->index()) + " of runtime '" +
                        ts.worker->runtime().name() + "'";
    if (ts.fiber) return "fiber '" + ts.fiber->display_name() + "' on " + where;
    return "the scheduler context (a Timer callback) of " + where;
  }
  char name[32] = "?";
  pthread_getname_np(pthread_self(), name, sizeof name);
  return "thread '" + std::string(name) + "' (tid " + std::to_string(::syscall(SYS_gettid)) + ")";
}

namespace detail {

void throw_not_in_fiber(const char* operation) {
  throw CrossRuntimeError(std::string(operation) +
                          " is Evented-only: it must be called from a fiber of a weft::Runtime, but the caller "
                          "is Threaded: " +
                          describe_caller() +
                          ". Bridges: start the work with Runtime::spawn or Runtime::block_on from this "
                          "thread, or pass data to a fiber through a weft::Channel.");
}

}  // namespace detail
}  // namespace weft
