// A primitive bound to a Runtime stays bound to that Runtime object, not to its
// address: once the runtime is destroyed, a new Runtime built in the same storage
// (std::optional re-emplaced) is another domain, and its fibers are refused with
// CrossRuntimeError like any other runtime's.
#include <optional>
#include <string>

#include <catch2/catch.hpp>

#include <weft/runtime/test_access.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/futex_counter.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/weft.hpp>

#include "../helpers/test_support.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

/// The text of the CrossRuntimeError fn throws, or "" when it throws none.
template <class Fn>
std::string refusal(Fn&& fn) {
  try {
    fn();
  } catch (const weft::CrossRuntimeError& e) {
    return e.what();
  }
  return {};
}
}  // namespace

TEST_CASE("a primitive bound explicitly to a destroyed runtime refuses a new runtime built at the same address") {
  std::optional<weft::Runtime> rt;
  rt.emplace(weft::Config{.name = "reborn"});
  const weft::Runtime* first = &*rt;
  weft::Event e{*rt, weft::Event::Mode::manual_reset, "bound-explicitly"};
  rt.reset();
  rt.emplace(weft::Config{.name = "reborn"});
  REQUIRE(&*rt == first);  // the same storage: only the id tells them apart
  const std::string msg = rt->block_on([&] { return refusal([&] { (void)e.wait_for(1ms); }); });
  INFO(msg);
  REQUIRE_THAT(msg, Contains("weft::Event 'bound-explicitly'"));
  REQUIRE_THAT(msg, Contains("belongs to Evented(runtime 'reborn')"));
  REQUIRE_THAT(msg, Contains("another Runtime object with the same name"));
}

TEST_CASE("a primitive bound by its first waiter to a destroyed runtime refuses a new runtime at the same address") {
  std::optional<weft::Runtime> rt;
  weft::Semaphore sem{1, "bound-lazily"};
  weft::FutexCounter counter{0, "bound-lazily"};
  rt.emplace(weft::Config{.name = "reborn"});
  const weft::Runtime* first = &*rt;
  rt->block_on([&] {
    sem.acquire();                                           // binds to the first runtime
    (void)counter.wait_until_changed(counter.value(), 1ms);  // binds too
  });
  REQUIRE(weft::detail::TestAccess::binding(sem).bound());
  REQUIRE(weft::detail::TestAccess::binding(counter).bound());
  rt.reset();
  rt.emplace(weft::Config{.name = "reborn"});
  REQUIRE(&*rt == first);
  const std::string sem_msg = rt->block_on([&] { return refusal([&] { (void)sem.try_acquire(); }); });
  INFO(sem_msg);
  REQUIRE_THAT(sem_msg, Contains("weft::Semaphore 'bound-lazily'"));
  const std::string counter_msg =
      rt->block_on([&] { return refusal([&] { (void)counter.wait_until_changed(counter.value(), 1ms); }); });
  INFO(counter_msg);
  REQUIRE_THAT(counter_msg, Contains("weft::FutexCounter 'bound-lazily'"));
}

TEST_CASE("the runtime a primitive is bound to still serves it after another runtime came and went") {
  weft::Runtime keep{weft::Config{.name = "keep"}};
  weft::Event e{keep};
  {
    weft::Runtime other{weft::Config{.name = "other"}};
    REQUIRE_FALSE(other.block_on([&] { return refusal([&] { (void)e.wait_for(1ms); }); }).empty());
  }
  REQUIRE(keep.block_on([&] {
                return refusal([&] {
                  e.set();
                  e.wait();
                });
              })
              .empty());
}

TEST_CASE("the domains of two runtimes built one after the other at the same address compare unequal") {
  std::optional<weft::Runtime> rt;
  rt.emplace();
  const weft::Domain first = rt->block_on([] { return weft::current_domain(); });
  rt.reset();
  rt.emplace();
  const weft::Domain second = rt->block_on([] { return weft::current_domain(); });
  REQUIRE(first.runtime == second.runtime);  // the same storage
  REQUIRE_FALSE(first == second);
}
