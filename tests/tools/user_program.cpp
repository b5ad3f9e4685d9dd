// A program built the way a user builds against an installed weft: only with the
// flags `pkg-config --cflags --libs weft` gives (tests/tools/installed_weft_test.py
// compiles it). It starts a runtime, runs one fiber and exits 0; it exits 77 when
// the kernel refuses io_uring here.
#include <cstdio>

#include <weft/weft.hpp>

int main() {
  try {
    weft::Runtime rt;
    return rt.block_on([] { return weft::spawn([] { return 0; }).join(); });
  } catch (const weft::StartupError& e) {
    std::fprintf(stderr, "SKIP: %s\n", e.what());
    return 77;
  }
}
