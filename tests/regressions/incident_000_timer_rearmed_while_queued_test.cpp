// Incident 000: a completion re-initialised while still queued in the loop
// panicked on a null result and orphaned every completion queued behind it.
// weft's rule: a Timer is a state machine over one intrusive heap node; arm,
// reset and cancel are legal in every state, any number of times, from any fiber
// and from its own callback; nothing queued behind it is ever lost.
#include <cstdint>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);
using weft::test::Rng;  // seeded from the run seed (WEFT_SEED): a failing storm replays
}  // namespace

TEST_CASE("incident 000: re-arming a timer whose expiry is due but undelivered supersedes it") {
  weft::Runtime rt;
  rt.block_on([] {
    int fired = 0;
    weft::Timer t([&] { ++fired; });
    t.reset(0ns);          // due at once, delivered at the next tick
    REQUIRE(t.reset(1h));  // re-armed before delivery: the due expiry is superseded
    weft::sleep_for(2ms);
    REQUIRE(fired == 0);
    REQUIRE(t.cancel());
  });
}

TEST_CASE("incident 000: a callback that re-arms or cancels other due timers orphans nothing behind them") {
  weft::Runtime rt;
  rt.block_on([] {
    int a = 0, b = 0, c = 0, d = 0;
    weft::Timer tb([&] { ++b; });
    weft::Timer tc([&] { ++c; });
    weft::Timer td([&] { ++d; });
    weft::Timer ta([&] {
      ++a;
      tb.reset(1h);  // b was due in the same batch: now superseded
      tc.cancel();   // c too
    });
    // All due in the same tick; a has the earliest deadline so it fires first.
    auto now = std::chrono::steady_clock::now();
    ta.reset_at(now - 3ms);
    tb.reset_at(now - 2ms);
    tc.reset_at(now - 2ms);
    td.reset_at(now - 1ms);
    weft::sleep_for(2ms);
    REQUIRE(a == 1);
    REQUIRE(b == 0);
    REQUIRE(c == 0);
    REQUIRE(d == 1);  // queued behind the re-armed ones: still delivered
    REQUIRE(tb.cancel());
  });
}

TEST_CASE("incident 000: arm/reset/cancel storm from many fibers loses and duplicates no expiry") {
  const long total_ops = 1000000;  // full count in every build: it is cheap
  constexpr int kTimers = 8;
  constexpr int kFibers = 8;
  weft::Runtime rt;
  rt.block_on([&] {
    struct Book {
      std::uint64_t arms = 0, superseded = 0, callbacks = 0, waits_true = 0, waits_false = 0;
    };
    std::vector<Book> book(kTimers);
    std::vector<std::unique_ptr<weft::Timer>> timers;
    Rng cb_rng(0);
    for (int i = 0; i < kTimers; ++i) {
      timers.push_back(std::make_unique<weft::Timer>([&, i] {
        ++book[i].callbacks;
        // From inside the callback (the "firing" state): sometimes re-arm itself
        // or poke a neighbour.
        auto r = cb_rng.next();
        if (r % 4 == 0) {
          book[i].superseded += timers[i]->reset(std::chrono::microseconds(r % 50));
          ++book[i].arms;
        } else if (r % 4 == 1) {
          int j = static_cast<int>((r >> 8) % kTimers);
          book[j].superseded += timers[j]->cancel();
        }
      }));
    }
    const long per_fiber = total_ops / kFibers;
    std::vector<weft::JoinHandle<void>> fibers;
    for (int f = 0; f < kFibers; ++f) {
      fibers.push_back(weft::spawn(
          [&, f] {
            Rng rng(static_cast<std::uint64_t>(f) + 1);
            for (long op = 0; op < per_fiber; ++op) {
              auto r = rng.next();
              int i = static_cast<int>(r % kTimers);
              switch ((r >> 8) % 16) {
                case 0:
                case 1:
                case 2:
                case 3:
                case 4:
                case 5:
                  book[i].superseded += timers[i]->reset(std::chrono::microseconds((r >> 16) % 40));
                  ++book[i].arms;
                  break;
                case 6:
                case 7:
                case 8:
                  book[i].superseded += timers[i]->cancel();
                  break;
                case 9:
                case 10: {
                  // arm() does not report a supersede; armed() just before does
                  // (nothing runs between the two calls on this worker).
                  const bool was_armed = timers[i]->armed();
                  timers[i]->arm(std::chrono::microseconds((r >> 16) % 40));
                  ++book[i].arms;
                  book[i].superseded += was_armed;
                  break;
                }
                case 11:
                  if ((r >> 20) % 64 == 0) {
                    if (timers[i]->wait())
                      ++book[i].waits_true;
                    else
                      ++book[i].waits_false;
                  }
                  break;
                case 12:
                case 13:
                  weft::yield();
                  break;
                default:
                  if ((r >> 24) % 256 == 0) weft::sleep_for(std::chrono::microseconds(20));
                  break;
              }
            }
          },
          {.name = "storm"}));
    }
    for (auto& h : fibers) h.join();
    // Quiesce: cancel what is still pending (each cancel that returns true is a
    // superseded arm); callbacks that re-arm are cancelled again.
    for (int round = 0; round < 4; ++round)
      for (int i = 0; i < kTimers; ++i) book[i].superseded += timers[i]->cancel();
    weft::sleep_for(1ms);
    for (int i = 0; i < kTimers; ++i) book[i].superseded += timers[i]->cancel();
    std::uint64_t expiries = 0;
    for (int i = 0; i < kTimers; ++i) {
      INFO("timer " << i);
      REQUIRE_FALSE(timers[i]->armed());
      REQUIRE(book[i].callbacks == timers[i]->expirations());
      // Every arm ends in exactly one expiry or one supersede: none lost, none twice.
      REQUIRE(book[i].arms == timers[i]->expirations() + book[i].superseded);
      expiries += timers[i]->expirations();
    }
    REQUIRE(expiries > 0);  // the storm really delivered expiries
  });
}
