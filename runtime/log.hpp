// weft/runtime/log.hpp — the "weft" spdlog logger.
//
// Every line carries who logged it: "w<worker>/<fiber name>" inside a fiber,
// "w<worker>/sched" in a worker's scheduler context, the thread's name elsewhere.
// The level comes from WEFT_LOG (trace, debug, info, warn, error, critical, off;
// default info), read when the logger is first used. Sinks are the _mt kind, so
// lines from many threads never interleave mid-line.
#pragma once

#include <spdlog/spdlog.h>

namespace weft::log {

spdlog::logger& logger();

/// Replaces the level (overrides WEFT_LOG).
void set_level(spdlog::level::level_enum level);

}  // namespace weft::log
