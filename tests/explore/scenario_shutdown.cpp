// tests/explore/scenario_shutdown.cpp — the shutdown scenario: the loads of the
// other scenarios (a random subset: sockets, sync, timers, offload, files) run on one
// runtime, which ends at a random moment: its destructor on the main thread, or
// shutdown() from one or two other threads first.
// Invariants:
//  - no crash and no hang (every fiber unwinds: its blocking call throws
//    FiberCancelled, or it ends by itself); concurrent shutdown() calls all
//    return;
//  - every op in flight ends with a documented outcome (the loads' own checks);
//  - nothing leaks: the fd count is back where it was, offload results are all
//    destroyed, and (asan build) LeakSanitizer finds nothing at exit;
//  - Timers, sync primitives and channels outlive the runtime and are destroyed
//    after it, idle.
#include <memory>
#include <thread>
#include <vector>

#include "explore.hpp"

namespace weft::explore::shutdown {
namespace {

void body(Run& run) {
  Rng r = run.rng(0);
  const unsigned workers = 1 + static_cast<unsigned>(r.next() % 2);
  allow_error_log("registered-file table failed");  // ENOMEM injected into a slot removal
  const int fds0 = count_fds();
  auto rt = std::make_unique<weft::Runtime>(run.config(workers));
  watch(rt.get());
  std::vector<std::unique_ptr<Load>> loads;
  std::string names;
  using Make = std::unique_ptr<Load> (*)(weft::Runtime&, const Run&, bool);
  const std::pair<const char*, Make> kinds[] = {{"sockets", &make_sockets_load},
                                                {"sync", &make_sync_load},
                                                {"timers", &make_timers_load},
                                                {"offload", &make_offload_load},
                                                {"files", &make_files_load}};
  for (const auto& [name, make] : kinds) {
    if (r.next() % 4 == 0) continue;
    loads.push_back(make(*rt, run, true));
    names += std::string(" ") + name;
  }
  if (loads.empty()) loads.push_back(make_sync_load(*rt, run, true));
  note("loads:" + names);
  phase("shutdown: starting the loads");
  for (auto& l : loads) l->start();
  std::this_thread::sleep_for(std::chrono::microseconds(r.between(0, 30000)));
  phase("shutdown: ending the runtime");
  const unsigned how = static_cast<unsigned>(r.next() % 3);
  std::vector<std::thread> closers;
  for (unsigned i = 0; i < how; ++i)  // 0: the destructor alone; 1-2 threads call shutdown() first
    closers.emplace_back([&rt] { rt->shutdown(); });
  for (auto& t : closers) t.join();
  note(how ? std::to_string(how) + " thread(s) called shutdown()" : std::string("the destructor alone"));
  note_stats(*rt);
  watch(nullptr);
  rt.reset();
  // A fiber the shutdown gave up on never ends: joining it (below) would hang.
  if (const std::size_t n = error_logs_with("abandoned"))
    FAIL_NOW("the shutdown abandoned " + std::to_string(n) + " fiber(s) that were still to end, e.g. \"" +
             first_error_log_with("abandoned") + "\" (loads:" + names + ")");
  phase("shutdown: finishing the loads");
  for (auto& l : loads) l->finish();
  loads.clear();
  const int fds1 = count_fds();
  EXPECT(fds1 == fds0, std::to_string(fds1 - fds0) + " fd(s) left open after the runtime (loads:" + names + ")");
}

}  // namespace
}  // namespace weft::explore::shutdown

namespace weft::explore {
const Scenario kShutdown{"shutdown", "the runtime ended at a random moment under every other scenario's load",
                         &shutdown::body};
}
