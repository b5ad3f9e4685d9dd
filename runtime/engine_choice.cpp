// runtime/engine_choice.cpp — Config::engine and WEFT_ENGINE resolved, and the
// words for a fallback. See engine_choice.hpp.
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include <weft/runtime/engine_choice.hpp>

#include "weft_build_config.hpp"

#if WEFT_VALGRIND
#include <valgrind/valgrind.h>
#endif

namespace weft::detail {

namespace {
bool under_valgrind() noexcept {
#if WEFT_VALGRIND
  return RUNNING_ON_VALGRIND != 0;
#else
  return false;
#endif
}
}  // namespace

const char* engine_name(Engine e) noexcept {
  switch (e) {
    case Engine::automatic:
      return "auto";
    case Engine::io_uring:
      return "io_uring";
    case Engine::epoll:
      return "epoll";
  }
  return "?";
}

EngineChoice choose_engine(Engine configured) {
  EngineChoice c;
  std::string source = "Config::engine";
  if (const char* env = std::getenv("WEFT_ENGINE"); env && *env) {
    if (std::strcmp(env, "auto") == 0)
      configured = Engine::automatic;
    else if (std::strcmp(env, "io_uring") == 0)
      configured = Engine::io_uring;
    else if (std::strcmp(env, "epoll") == 0)
      configured = Engine::epoll;
    else
      throw std::invalid_argument(std::string("weft: WEFT_ENGINE='") + env +
                                  "' names no engine (use auto, io_uring or epoll)");
    source = std::string("WEFT_ENGINE=") + env;
  }
  switch (configured) {
    case Engine::io_uring:
    case Engine::epoll:
      c.first = configured;
      c.reason = std::string(engine_name(configured)) + ", as " + source + " asks";
      return c;
    case Engine::automatic:
      break;
  }
  if (under_valgrind()) {
    c.first = Engine::epoll;
    c.reason =
        "epoll, because the process runs under valgrind, which cannot wait in io_uring_enter (it serialises "
        "threads; a worker blocked there would hold the others). Config::engine = io_uring insists on io_uring.";
    return c;
  }
  c.first = Engine::io_uring;
  c.may_fall_back = true;
  c.reason = "io_uring (automatic)";
  return c;
}

std::string fallback_reason(const std::string& what) {
  static constexpr const char kPrefix[] = "weft: cannot start: ";
  std::string cause = what.rfind(kPrefix, 0) == 0 ? what.substr(sizeof kPrefix - 1) : what;
  return "epoll, because io_uring cannot be used here: " + cause +
         " (Config::engine = epoll says this on purpose and silences this warning.)";
}

}  // namespace weft::detail
