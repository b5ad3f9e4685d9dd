// examples/hello.cpp: the README's "## Example", compiled by the build and run
// by the test `example_hello`, which expects 285 and then the CrossRuntimeError
// that main's own weft::sleep_for gets (main is Threaded).
// Everything below the clang-format line is the README's code block, verbatim:
// the test `readme_example` fails when the two differ, so change them together.
// (The block keeps the README's hand layout, hence no clang-format.)
// clang-format off
#include <weft/weft.hpp>
#include <cstdio>
#include <vector>

int main() {
  weft::Runtime rt;                       // one Evented worker with its own io_uring
  long total = rt.block_on([] {           // runs as a fiber; main blocks until it returns
    std::vector<weft::JoinHandle<long>> kids;
    for (long i = 0; i < 10; ++i)
      kids.push_back(weft::spawn([i] { weft::sleep_for(std::chrono::milliseconds(10 * i)); return i * i; },
                                 {.name = "square"}));
    long sum = 0;
    for (auto& k : kids) sum += k.join();  // parks this fiber, not the thread
    return sum;
  });
  std::printf("%ld\n", total);             // 285
  try { weft::sleep_for(std::chrono::seconds(1)); }   // main is Threaded: refused
  catch (const weft::CrossRuntimeError& e) { std::puts(e.what()); }
}
