// tests/helpers/captured_log.hpp — weft's log lines, captured for a test.
//
// A CapturedLog adds a ring-buffer sink to weft's logger for its lifetime and
// removes it when it goes: create it before any runtime of the test and let it
// outlive them (a sink is detached only once nothing logs any more).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include <spdlog/sinks/ringbuffer_sink.h>

#include <weft/runtime/log.hpp>

namespace weft::test {

struct CapturedLog {
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
  CapturedLog() { weft::log::logger().sinks().push_back(sink); }
  ~CapturedLog() { weft::log::logger().sinks().pop_back(); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;
  /// Every captured line, in order.
  [[nodiscard]] std::string text() const {
    std::string all;
    for (auto& line : sink->last_formatted()) all += line;
    return all;
  }
  /// The first captured line containing both parts, waiting for it (bounded: 60 s).
  [[nodiscard]] std::string wait_line(const std::string& a, const std::string& b) const {
    for (int i = 0; i < 6000; ++i) {
      for (auto& line : sink->last_formatted())
        if (line.find(a) != std::string::npos && line.find(b) != std::string::npos) return line;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return "";
  }
};

}  // namespace weft::test
