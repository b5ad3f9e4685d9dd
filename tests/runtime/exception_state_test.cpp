// C++ exception state is per fiber: the caught-exception stack (what `throw;` and
// std::current_exception() see) and std::uncaught_exceptions() belong to the fiber
// that threw or caught, not to its worker thread. Fibers park inside catch handlers
// and inside destructors that run during unwinding (weft itself does both), then
// resume in any order; each must still see, rethrow and free only its own exceptions.
// The exceptions are Tracked: their destructor records that they died, so a handler
// left by the wrong fiber shows up as a destroyed exception without a sanitizer too
// (under ASan it is also a heap-use-after-free report).
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

/// An exception that records its destruction in a flag that outlives it.
struct Tracked : std::runtime_error {
  bool* destroyed;
  Tracked(const std::string& what, bool* d) : std::runtime_error(what), destroyed(d) {}
  Tracked(const Tracked& o) = default;
  ~Tracked() override { *destroyed = true; }
};

/// What a fiber saw: the message it rethrew or caught, and checks made on the way.
struct Seen {
  std::string message;
  bool own_alive_in_handler = false;  // its exception not destroyed while it was in the handler
  int uncaught_while_parked = -1;
  int uncaught_after_park = -1;
};

/// Parks the fiber in its destructor, which runs during unwinding.
struct ParkOnUnwind {
  weft::Event* parked;
  weft::Event* go;
  Seen* seen;
  ~ParkOnUnwind() {
    seen->uncaught_while_parked = std::uncaught_exceptions();
    parked->set();
    go->wait();
    seen->uncaught_after_park = std::uncaught_exceptions();
  }
};
}  // namespace

TEST_CASE("two fibers parked in catch handlers each rethrow their own exception when resumed in the other order") {
  weft::Runtime rt;
  rt.block_on([] {
    // A catches, parks; B catches, parks; A resumes first and rethrows: a stack
    // shared by the thread would have B's exception on top.
    auto body = [](const char* msg, weft::Event& caught, weft::Event& go) -> std::string {
      try {
        try {
          throw std::runtime_error(msg);
        } catch (...) {
          caught.set();
          go.wait();
          throw;
        }
      } catch (const std::exception& e) {
        return e.what();
      }
      return "nothing rethrown";
    };
    weft::Event a_caught, b_caught, go_a, go_b;
    auto a = weft::spawn([&] { return body("exception of A", a_caught, go_a); }, {.name = "A"});
    a_caught.wait();
    auto b = weft::spawn([&] { return body("exception of B", b_caught, go_b); }, {.name = "B"});
    b_caught.wait();
    go_a.set();
    std::string got_a = a.join();
    go_b.set();
    std::string got_b = b.join();
    CHECK(got_a == "exception of A");
    CHECK(got_b == "exception of B");
  });
}

TEST_CASE("a fiber leaving its handler does not destroy the exception another fiber is handling") {
  weft::Runtime rt;
  rt.block_on([] {
    bool a_dead = false, b_dead = false;
    weft::Event a_caught, b_caught, go_a, go_b;
    auto handler = [](const char* msg, bool* dead, weft::Event& caught, weft::Event& go) {
      Seen s;
      try {
        throw Tracked(msg, dead);
      } catch (const Tracked& e) {
        caught.set();
        go.wait();
        s.own_alive_in_handler = !*dead;
        s.message = e.what();  // were it destroyed, ASan reports this read (heap-use-after-free)
      }
      return s;
    };
    auto a = weft::spawn([&] { return handler("exception of A", &a_dead, a_caught, go_a); }, {.name = "A"});
    a_caught.wait();
    auto b = weft::spawn([&] { return handler("exception of B", &b_dead, b_caught, go_b); }, {.name = "B"});
    b_caught.wait();
    // A leaves its handler first, then B: not the last-in-first-out order of a
    // stack shared by the thread, which would end B's exception here.
    go_a.set();
    Seen sa = a.join();
    CHECK_FALSE(b_dead);  // A's leaving must have ended A's exception, not B's
    go_b.set();
    Seen sb = b.join();
    CHECK(sa.own_alive_in_handler);
    CHECK(sa.message == "exception of A");
    CHECK(sb.own_alive_in_handler);
    CHECK(sb.message == "exception of B");
    CHECK(a_dead);
    CHECK(b_dead);
  });
}

TEST_CASE("std::uncaught_exceptions counts only the calling fiber's exceptions") {
  weft::Runtime rt;
  rt.block_on([] {
    weft::Event parked, go;
    Seen seen;
    auto a = weft::spawn(
        [&]() -> std::string {
          try {
            ParkOnUnwind p{&parked, &go, &seen};
            throw std::runtime_error("unwinding A");
          } catch (const std::exception& e) {
            return e.what();
          }
        },
        {.name = "A"});
    parked.wait();  // A is parked in a destructor, its exception in flight
    int here = std::uncaught_exceptions();
    int other = weft::spawn([] { return std::uncaught_exceptions(); }, {.name = "other"}).join();
    go.set();
    CHECK(a.join() == "unwinding A");
    CHECK(here == 0);
    CHECK(other == 0);
    CHECK(seen.uncaught_while_parked == 1);
    CHECK(seen.uncaught_after_park == 1);
    CHECK(std::uncaught_exceptions() == 0);
  });
}

TEST_CASE("an exception thrown through a fiber that parks while unwinding arrives intact at its join") {
  weft::Runtime rt;
  rt.block_on([] {
    bool a_dead = false, b_dead = false;
    weft::Event a_parked, go_a, a_in_handler, go_a2, b_caught, go_b;
    Seen seen_a;
    // A: unwinds through a destructor that parks, catches, parks in the handler,
    // then rethrows to its join. B meanwhile throws and catches its own, and leaves
    // its handler while A is inside A's.
    auto a = weft::spawn(
        [&] {
          try {
            ParkOnUnwind p{&a_parked, &go_a, &seen_a};
            throw Tracked("payload of A", &a_dead);
          } catch (const Tracked&) {
            a_in_handler.set();
            go_a2.wait();
            throw;
          }
        },
        {.name = "A"});
    a_parked.wait();
    auto b = weft::spawn(
        [&] {
          try {
            throw Tracked("payload of B", &b_dead);
          } catch (const Tracked& e) {
            b_caught.set();
            go_b.wait();
            return std::string(e.what());
          }
        },
        {.name = "B"});
    b_caught.wait();
    go_a.set();
    a_in_handler.wait();
    go_b.set();
    std::string got_b = b.join();  // B leaves its handler while A is in its own
    CHECK_FALSE(a_dead);
    go_a2.set();
    std::string got_a;
    try {
      a.join();
      got_a = "join returned without an exception";
    } catch (const Tracked& e) {
      got_a = e.what();
    }
    CHECK(got_a == "payload of A");
    CHECK(got_b == "payload of B");
    CHECK(seen_a.uncaught_while_parked == 1);
    CHECK(seen_a.uncaught_after_park == 1);
  });
}

TEST_CASE("a fiber starts with no current exception even while another is parked in a handler") {
  weft::Runtime rt;
  rt.block_on([] {
    weft::Event caught, go;
    auto holder = weft::spawn(
        [&] {
          try {
            throw std::runtime_error("held");
          } catch (...) {
            caught.set();
            go.wait();
          }
        },
        {.name = "holder"});
    caught.wait();
    auto probe = [] { return std::current_exception() == nullptr && std::uncaught_exceptions() == 0; };
    bool fresh_while_held = weft::spawn(probe, {.name = "fresh"}).join();
    bool here_while_held = probe();
    go.set();
    holder.join();
    bool fresh_after = weft::spawn(probe, {.name = "after"}).join();
    CHECK(fresh_while_held);
    CHECK(here_while_held);
    CHECK(fresh_after);
    CHECK(probe());
  });
}

TEST_CASE("fibers on two workers parked in handlers each rethrow their own exception") {
  weft::Config cfg;
  cfg.workers = 2;
  weft::Runtime rt(cfg);
  rt.block_on([&rt] {
    // Two fibers per worker, all four inside their handlers at once.
    constexpr std::size_t kFibers = 4;
    std::vector<std::unique_ptr<weft::Event>> caught, go;
    for (std::size_t i = 0; i < kFibers; ++i) {
      caught.push_back(std::make_unique<weft::Event>(rt));
      go.push_back(std::make_unique<weft::Event>(rt));
    }
    std::vector<weft::JoinHandle<std::string>> hs;
    for (std::size_t i = 0; i < kFibers; ++i) {
      hs.push_back(rt.spawn_on(static_cast<unsigned>(i % 2), [i, &caught, &go]() -> std::string {
        try {
          try {
            throw std::runtime_error("exception " + std::to_string(i));
          } catch (...) {
            caught[i]->set();
            go[i]->wait();
            throw;
          }
        } catch (const std::exception& e) {
          return e.what();
        }
      }));
    }
    for (auto& c : caught) c->wait();
    std::vector<std::string> got(kFibers);
    for (std::size_t i = 0; i < kFibers; ++i) {  // resumed in the order they entered (not LIFO)
      go[i]->set();
      got[i] = hs[i].join();
    }
    for (std::size_t i = 0; i < kFibers; ++i) CHECK(got[i] == "exception " + std::to_string(i));
  });
}
