// A program built the way a user builds against an installed weft: only with the
// flags `pkg-config --cflags --libs weft` gives (tests/tools/installed_weft_test.py
// compiles it). No argument: start a runtime, run one fiber, exit 0.
// `overflow OFFSET`: a fiber named "big-frame#1" first uses OFFSET bytes of its
// stack, then recurses through frames with a 16 KiB local buffer whose first write
// is its lowest byte, until it runs off the end of its stack. Unless every frame
// probes its pages on the way down (-fstack-clash-protection), such a write can
// land past the single guard page, in whatever lies below; with the probes it
// faults in the guard page and weft reports the overflow naming the fiber.
// Exits 77 when the kernel refuses io_uring here.
#include <alloca.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <weft/weft.hpp>

namespace {

__attribute__((noinline)) int big_frame(int depth) {
  volatile char buf[16 * 1024];
  buf[0] = static_cast<char>(depth);  // the lowest byte: the first touch of this frame
  if (depth < 0) return 0;            // never: depth only grows (keeps compilers from warning)
  return big_frame(depth + 1) + buf[0];
}

__attribute__((noinline)) int overflow_after(std::size_t offset) {
  auto* used = static_cast<volatile char*>(alloca(offset + 1));
  used[0] = 1;
  return big_frame(0) + used[0];
}

}  // namespace

int main(int argc, char** argv) {
  try {
    weft::Config cfg;
    cfg.stall_threshold = std::chrono::milliseconds(0);
    weft::Runtime rt(cfg);
    if (argc == 3 && std::strcmp(argv[1], "overflow") == 0) {
      std::size_t offset = std::strtoul(argv[2], nullptr, 10);
      rt.block_on([offset] { return overflow_after(offset); }, {.name = "big-frame#1"});
      std::puts("overflow not detected: the fiber returned");
      return 1;
    }
    return rt.block_on([] { return weft::spawn([] { return 0; }).join(); });
  } catch (const weft::StartupError& e) {
    std::fprintf(stderr, "SKIP: %s\n", e.what());
    return 77;
  }
}
