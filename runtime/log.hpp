// weft/runtime/log.hpp — the "weft" spdlog logger.
//
// Every line carries who logged it: "w<worker>/<fiber name>" inside a fiber,
// "w<worker>/sched" in a worker's scheduler context (timer callbacks), the
// thread's name elsewhere. Sinks are the _mt kind, so lines from many threads
// never interleave mid-line.
// The level comes from WEFT_LOG, read when the logger is first used: trace,
// debug, info, warn (or warning), error (or err), critical (or crit, fatal),
// off (or none), in any case, blanks around it ignored; unset or empty: info.
// Any other value keeps info and is reported once, at warn level, naming the
// value and the accepted names (a typo never silences the log).
#pragma once

#include <optional>
#include <string_view>

#include <spdlog/spdlog.h>

namespace weft::log {

spdlog::logger& logger();

/// Replaces the level (overrides WEFT_LOG).
void set_level(spdlog::level::level_enum level);

/// The level a WEFT_LOG value names (see the top of this file); nullopt when it
/// names none.
std::optional<spdlog::level::level_enum> parse_level(std::string_view name);

}  // namespace weft::log
