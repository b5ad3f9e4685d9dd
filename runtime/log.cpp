// runtime/log.cpp — logger construction, the WEFT_LOG level names and the "%W" (who) pattern flag.
#include <pthread.h>

#include <cctype>
#include <cstdlib>
#include <memory>
#include <string>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <weft/runtime/domain.hpp>
#include <weft/runtime/log.hpp>

namespace weft::log {

namespace {

class WhoFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    std::string who;
    if (const Domain d = current_domain(); d.worker >= 0) {
      who.append("w").append(std::to_string(d.worker)).append("/");
      who.append(d.evented() ? detail::current_fiber_name() : std::string("sched"));
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
  lg->set_level(spdlog::level::info);
  if (const char* env = std::getenv("WEFT_LOG"); env && *env) {
    if (auto level = parse_level(env)) {
      lg->set_level(*level);
    } else {
      // Once: make_logger runs once per process.
      lg->warn(
          "WEFT_LOG='{}' names no level; logging at info. Accepted (any case): trace, debug, info, "
          "warn|warning, error|err, critical|crit|fatal, off|none",
          env);
    }
  }
  lg->flush_on(spdlog::level::warn);
  return lg;
}

}  // namespace

std::optional<spdlog::level::level_enum> parse_level(std::string_view name) {
  while (!name.empty() && std::isspace(static_cast<unsigned char>(name.front()))) name.remove_prefix(1);
  while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back()))) name.remove_suffix(1);
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  using spdlog::level::level_enum;
  static constexpr struct {
    std::string_view name;
    level_enum level;
  } kNames[] = {
      {"trace", level_enum::trace},    {"debug", level_enum::debug},       {"info", level_enum::info},
      {"warn", level_enum::warn},      {"warning", level_enum::warn},      {"error", level_enum::err},
      {"err", level_enum::err},        {"critical", level_enum::critical}, {"crit", level_enum::critical},
      {"fatal", level_enum::critical}, {"off", level_enum::off},           {"none", level_enum::off},
  };
  for (const auto& n : kNames)
    if (lower == n.name) return n.level;
  return std::nullopt;
}

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> lg = make_logger();  // thread-safe init (magic static)
  return *lg;
}

void set_level(spdlog::level::level_enum level) {
  logger().set_level(level);
}

}  // namespace weft::log
