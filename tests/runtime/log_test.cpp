// The "weft" logger: WEFT_LOG names a level in any case with the usual aliases,
// and any other value keeps info and says so once (a typo never silences the log,
// stall reports included); every line says who logged it ("w<worker>/<fiber>" in
// a fiber, "w<worker>/sched" in a timer callback, the thread's name elsewhere);
// lines logged by many threads at once never interleave mid-line.
//
// WEFT_LOG is read once per process, so each case runs this binary again in a
// fresh process with WEFT_LOG set (exec_self) and runs one hidden "[.child]" case
// there, which logs; the parent reads its stderr.
#include <pthread.h>

#include <atomic>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/runtime/log.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using spdlog::level::level_enum;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

/// The lines of `out` logged by weft ("[...] [weft] [...").
std::vector<std::string> weft_lines(const std::string& out) {
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);)
    if (l.find("] [weft] [") != std::string::npos) lines.push_back(l);
  return lines;
}

long count(const std::string& hay, const std::string& needle) {
  long n = 0;
  for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

weft::test::ChildResult run_child(const std::string& test_name, const std::string& weft_log) {
  auto r = weft::test::exec_self({test_name}, {{"WEFT_LOG", weft_log}});
  INFO("child '" << test_name << "' with WEFT_LOG='" << weft_log << "' said:\n" << r.output);
  REQUIRE(r.exited);
  REQUIRE(r.exit_code == 0);
  return r;
}

constexpr const char* kProbe = "log child: one line per level";
constexpr const char* kStall = "log child: a stall report";
constexpr const char* kWho = "log child: lines from a fiber a timer callback and a named thread";
constexpr const char* kStorm = "log child: many threads and fibers log at once";
}  // namespace

// ---- the hidden children (run only by name, in a fresh process) ----

TEST_CASE("log child: one line per level", "[.child]") {
  auto& lg = weft::log::logger();
  lg.trace("probe-trace");
  lg.debug("probe-debug");
  lg.info("probe-info");
  lg.warn("probe-warn");
  lg.error("probe-error");
  lg.critical("probe-critical");
}

TEST_CASE("log child: a stall report", "[.child]") {
  weft::Config cfg;
  cfg.stall_threshold = 20ms;
  weft::Runtime rt(cfg);
  rt.block_on(
      [&] {
        const auto give_up = std::chrono::steady_clock::now() + 60s;  // bounded
        while (rt.stats().stalls == 0 && std::chrono::steady_clock::now() < give_up) {
        }
      },
      {.name = "cpu-hog"});
}

TEST_CASE("log child: lines from a fiber a timer callback and a named thread", "[.child]") {
  weft::Runtime rt(weft::Config{.workers = 2});
  rt.spawn_on(1, [] { weft::log::logger().warn("from a named fiber"); }, {.name = "prefix-fiber"}).join();
  const std::uint64_t id = rt.spawn_on(0, [] {
                               weft::log::logger().warn("from an unnamed fiber");
                               return weft::this_fiber::id();
                             }).join();
  std::printf("unnamed fiber id %llu\n", static_cast<unsigned long long>(id));
  rt.block_on([] {
    bool fired = false;
    weft::Timer t([&] {
      weft::log::logger().warn("from a timer callback");
      fired = true;
    });
    t.reset(1ms);
    while (!fired) weft::sleep_for(1ms);
  });
  std::thread th([] {
    pthread_setname_np(pthread_self(), "logger-thread");
    weft::log::logger().warn("from a named thread");
  });
  th.join();
}

TEST_CASE("log child: many threads and fibers log at once", "[.child]") {
  const int per = static_cast<int>(weft::test::scaled(2000));
  const std::string pad(300, 'x');
  weft::Runtime rt(weft::Config{.workers = 2});
  std::vector<weft::JoinHandle<void>> fibers;
  for (int f = 0; f < 4; ++f)
    fibers.push_back(rt.spawn_on(static_cast<unsigned>(f % 2), [&, f] {
      for (int i = 0; i < per; ++i) {
        weft::log::logger().warn("src f{} i{} {} end", f, i, pad);
        if (i % 16 == 0) weft::yield();
      }
    }));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < per; ++i) weft::log::logger().warn("src t{} i{} {} end", t, i, pad);
    });
  for (auto& t : threads) t.join();
  for (auto& f : fibers) f.join();
  std::printf("lines per source %d\n", per);
}

// ---- the tests ----

TEST_CASE("parse_level accepts the level names in any case with their aliases and nothing else") {
  const std::map<std::string, level_enum> good = {
      {"trace", level_enum::trace},       {"DEBUG", level_enum::debug},   {"Info", level_enum::info},
      {"INFO", level_enum::info},         {"warn", level_enum::warn},     {"warning", level_enum::warn},
      {"WARNING", level_enum::warn},      {"error", level_enum::err},     {"err", level_enum::err},
      {"critical", level_enum::critical}, {"crit", level_enum::critical}, {"FATAL", level_enum::critical},
      {"off", level_enum::off},           {"None", level_enum::off},      {" warn\n", level_enum::warn},
  };
  for (const auto& [name, level] : good) {
    INFO("'" << name << "'");
    REQUIRE(weft::log::parse_level(name) == level);
  }
  for (const char* bad : {"", "loud", "warnings", "inf", "2", "info debug"}) {
    INFO("'" << bad << "'");
    REQUIRE_FALSE(weft::log::parse_level(bad).has_value());
  }
}

TEST_CASE("WEFT_LOG in upper or mixed case sets that level") {
  struct Case {
    const char* env;
    const char* lowest_shown;  // the probes from this one up are logged, none below
  };
  const char* probes[] = {"probe-trace", "probe-debug", "probe-info", "probe-warn", "probe-error", "probe-critical"};
  for (Case c : {Case{"INFO", "probe-info"}, Case{"warning", "probe-warn"}, Case{"Warn", "probe-warn"},
                 Case{"ERR", "probe-error"}, Case{"fatal", "probe-critical"}, Case{"Debug", "probe-debug"},
                 Case{"TRACE", "probe-trace"}}) {
    auto r = run_child(kProbe, c.env);
    INFO("WEFT_LOG='" << c.env << "', output:\n" << r.output);
    bool shown = false;
    for (const char* p : probes) {
      shown = shown || std::string(p) == c.lowest_shown;
      INFO(p);
      REQUIRE(count(r.output, p) == (shown ? 1 : 0));
    }
    REQUIRE(count(r.output, "names no level") == 0);
  }
}

TEST_CASE("WEFT_LOG=off or none silences every line") {
  for (const char* env : {"off", "NONE"}) {
    auto r = run_child(kProbe, env);
    INFO("WEFT_LOG='" << env << "', output:\n" << r.output);
    REQUIRE(weft_lines(r.output).empty());
  }
}

TEST_CASE("an unknown WEFT_LOG keeps info and warns once naming the value") {
  auto r = run_child(kProbe, "loud");
  INFO(r.output);
  REQUIRE(count(r.output, "WEFT_LOG='loud' names no level") == 1);
  REQUIRE_THAT(r.output, Contains("warn|warning"));
  REQUIRE(count(r.output, "probe-debug") == 0);
  for (const char* p : {"probe-info", "probe-warn", "probe-error", "probe-critical"}) {
    INFO(p);
    REQUIRE(count(r.output, p) == 1);
  }
}

TEST_CASE("a stall is reported with WEFT_LOG=INFO and with an unknown WEFT_LOG") {
  for (const char* env : {"INFO", "verbose"}) {
    auto r = run_child(kStall, env);
    INFO("WEFT_LOG='" << env << "', output:\n" << r.output);
    REQUIRE_THAT(r.output, Contains("stall: fiber cpu-hog"));
  }
}

TEST_CASE("a log line names its fiber and worker, the scheduler in a timer callback, else the thread") {
  auto r = run_child(kWho, "warn");
  INFO(r.output);
  std::smatch m;
  REQUIRE(std::regex_search(r.output, m, std::regex("unnamed fiber id ([0-9]+)")));
  const std::string unnamed = "[w0/fiber#" + m[1].str() + "] from an unnamed fiber";
  for (const std::string& expect :
       {std::string("[w1/prefix-fiber] from a named fiber"), unnamed, std::string("[w0/sched] from a timer callback"),
        std::string("[logger-thread] from a named thread")}) {
    INFO(expect);
    REQUIRE(count(r.output, expect) == 1);
  }
}

TEST_CASE("lines logged by many threads and fibers at once never interleave mid-line") {
  // On a terminal, as from a shell: the sink then writes each line in several
  // pieces (text, colour code, level, reset, text), which only its lock keeps
  // together.
  auto r = weft::test::exec_self({kStorm}, {{"WEFT_LOG", "warn"}}, true);
  r.output = std::regex_replace(r.output, std::regex("\x1b\\[[0-9;]*m"), "");
  INFO("exit " << r.exit_code << ", output starts:\n" << r.output.substr(0, 2000));
  REQUIRE(r.exited);
  REQUIRE(r.exit_code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(r.output, m, std::regex("lines per source ([0-9]+)")));
  const long per = std::stol(m[1].str());
  const std::regex line_re(
      R"(^\[[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+\] \[weft\] \[warning\] \[[^\]]+\] src ([ft][0-9]) i([0-9]+) x{300} end$)");
  std::set<std::string> seen;
  long bad = 0;
  std::string first_bad;
  std::istringstream in(r.output);
  for (std::string l; std::getline(in, l);) {
    if (l.find("src ") == std::string::npos && l.find("xxxx") == std::string::npos) continue;  // Catch's own lines
    std::smatch lm;
    if (!std::regex_match(l, lm, line_re)) {
      if (bad++ == 0) first_bad = l;
      continue;
    }
    seen.insert(lm[1].str() + "/" + lm[2].str());
  }
  INFO("first malformed line: " << first_bad.substr(0, 400));
  REQUIRE(bad == 0);
  REQUIRE(seen.size() == static_cast<std::size_t>(8 * per));  // every line, each once
}
