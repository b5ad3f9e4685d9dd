// weft/runtime/engine_choice.hpp — which I/O engine a Runtime's workers run, and
// why: Config::engine, overridden by WEFT_ENGINE, and the fallback of `automatic`.
//
// Invariants:
//  - The choice is made once per Runtime, before any fiber runs, and every worker
//    of the Runtime runs the same engine (a socket moved between them keeps its
//    semantics).
//  - `automatic` means io_uring unless the process runs under valgrind (which
//    cannot wait in io_uring_enter) or a worker's io_uring setup fails, for any
//    cause (seccomp, sysctl, memlock, an old kernel, a missing opcode): then every
//    worker runs epoll, and one warning names the cause and its remedy. An
//    explicit `io_uring` never falls back: its StartupError stands.
//  - The reason given is the one Runtime::stats() reports (Stats::engine_reason).
#pragma once

#include <string>

#include <weft/runtime/config.hpp>

namespace weft::detail {

struct EngineChoice {
  Engine first = Engine::io_uring;  ///< what to start the workers with
  bool may_fall_back = false;       ///< `automatic`: a StartupError moves to epoll
  std::string reason;               ///< why `first` (Stats::engine_reason)
};

/// Config::engine, or WEFT_ENGINE when set ("auto", "io_uring", "epoll"; anything
/// else throws std::invalid_argument naming the value).
EngineChoice choose_engine(Engine configured);
/// The reason, and the warning logged, when `automatic` falls back to epoll
/// because the io_uring setup failed with `what` (a StartupError's text).
std::string fallback_reason(const std::string& what);
/// The engine's name as Config and WEFT_ENGINE spell it.
const char* engine_name(Engine e) noexcept;

}  // namespace weft::detail
