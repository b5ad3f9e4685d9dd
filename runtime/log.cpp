// runtime/log.cpp — logger construction and the "%W" (who) pattern flag.
#include <weft/runtime/log.hpp>

#include <pthread.h>

#include <cstdlib>
#include <memory>
#include <string>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <weft/runtime/fiber/fiber.hpp>
#include <weft/runtime/uring/worker.hpp>

namespace weft::log {

namespace {

class WhoFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    std::string who;
    const auto& ts = detail::t_state;
    if (ts.worker) {
      who.append("w").append(std::to_string(ts.worker->index())).append("/");
      who.append(ts.fiber ? ts.fiber->display_name() : std::string("sched"));
    } else {
      char name[32] = "thread";
      pthread_getname_np(pthread_self(), name, sizeof name);
      who = name;
    }
    dest.append(who.data(), who.data() + who.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<WhoFlag>(); }
};

std::shared_ptr<spdlog::logger> make_logger() {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto lg = std::make_shared<spdlog::logger>("weft", sink);
  auto fmt = std::make_unique<spdlog::pattern_formatter>();
  fmt->add_flag<WhoFlag>('W').set_pattern("[%Y-%m-%d %H:%M:%S.%e] [weft] [%^%l%$] [%W] %v");
  lg->set_formatter(std::move(fmt));
  spdlog::level::level_enum level = spdlog::level::info;
  if (const char* env = std::getenv("WEFT_LOG"); env && *env) level = spdlog::level::from_str(env);
  lg->set_level(level);
  lg->flush_on(spdlog::level::warn);
  return lg;
}

}  // namespace

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> lg = make_logger();  // thread-safe init (magic static)
  return *lg;
}

void set_level(spdlog::level::level_enum level) { logger().set_level(level); }

}  // namespace weft::log
