// A Channel may be destroyed as soon as any send() or recv() on it has returned,
// on either side (the reply-channel pattern: "send a request carrying a reply
// Channel on my stack, recv() the answer, return"). The cases: the receiver
// destroys the channel right after recv() returns while the sender was blocked in
// send() (it took the blocked sender's value), and the converse (the sender
// destroys it right after send() handed its value to a blocked receiver); also
// with the two calls racing. Capacity 0, 1 and 4; threads and fibers on both
// sides. See tests/helpers/destroy_after_return.hpp for the round.
#include <cstdint>
#include <new>
#include <random>

#include <catch2/catch.hpp>

#include <weft/sync/channel.hpp>
#include <weft/weft.hpp>

#include "../helpers/destroy_after_return.hpp"
#include "../helpers/test_support.hpp"

using weft::Channel;
using weft::test::Order;
using weft::test::Side;

namespace {
const bool kUring = (weft::test::require_io_uring(), true);

constexpr Side kSides[] = {Side::thread, Side::fiber};
constexpr std::size_t kCapacities[] = {0, 1, 4};

std::uint64_t seed_once() {
  static const std::uint64_t kSeed = [] {
    const std::uint64_t v = (static_cast<std::uint64_t>(std::random_device{}()) << 32) | std::random_device{}();
    std::printf("channel_destroy_after_return: seed %llu\n", static_cast<unsigned long long>(v));
    std::fflush(stdout);
    return v;
  }();
  return kSeed;
}

/// A channel of `cap`; `fill` items already in it (a full channel blocks senders).
auto maker(std::size_t cap, std::size_t fill) {
  return [cap, fill](void* p) {
    auto* ch = new (p) Channel<int>(cap);
    for (std::size_t i = 0; i < fill; ++i) {
      int v = static_cast<int>(i);
      if (ch->try_send(v) != weft::SendStatus::ok) throw std::logic_error("prefill failed");
    }
    return ch;
  };
}

void recv_one(Channel<int>& ch) {
  if (!ch.recv()) throw std::logic_error("recv() found the channel closed");
}
void send_one(Channel<int>& ch) {
  ch.send(42);
}
bool queued(Channel<int>& ch) {
  return ch.has_waiters();
}

void require_clean(const weft::test::DestroyResult& r, long rounds) {
  INFO(r.error);
  REQUIRE(r.error.empty());
  INFO("written after destruction in " << r.corrupted << " of " << r.rounds << " rounds, first round "
                                       << r.first_corrupted);
  REQUIRE(r.rounds == rounds);
  REQUIRE(r.corrupted == 0);
}
}  // namespace

TEST_CASE("the receiver may destroy a Channel as soon as recv() returns while the sender was blocked") {
  const long rounds = weft::test::scaled(400);
  for (std::size_t cap : kCapacities)
    for (Side d : kSides)
      for (Side p : kSides) {
        INFO("capacity " << cap << ": " << side_name(d) << " receives and destroys; " << side_name(p)
                         << " was blocked in send()");
        // Full (cap items in it): the sender blocks, and recv() takes the oldest
        // item and refills the slot from the blocked sender (at capacity 0 it takes
        // the sender's value directly).
        require_clean(weft::test::destroy_after_return<Channel<int>>(d, p, Order::peer_first, rounds, seed_once(),
                                                                     maker(cap, cap), recv_one, send_one, queued),
                      rounds);
      }
}

TEST_CASE("the sender may destroy a Channel as soon as send() returns while the receiver was blocked") {
  const long rounds = weft::test::scaled(400);
  for (std::size_t cap : kCapacities)
    for (Side d : kSides)
      for (Side p : kSides) {
        INFO("capacity " << cap << ": " << side_name(d) << " sends and destroys; " << side_name(p)
                         << " was blocked in recv()");
        require_clean(weft::test::destroy_after_return<Channel<int>>(d, p, Order::peer_first, rounds, seed_once(),
                                                                     maker(cap, 0), send_one, recv_one, queued),
                      rounds);
      }
}

TEST_CASE("either side of a rendezvous Channel may destroy it as soon as its call returns") {
  // Capacity 0: neither call can complete alone, so the two may race; whichever
  // blocks first is woken by the other, and the destroyer's side varies.
  const long rounds = weft::test::scaled(400);
  for (Side d : kSides)
    for (Side p : kSides) {
      INFO(side_name(d) << " receives and destroys; " << side_name(p) << " sends at the same time");
      require_clean(weft::test::destroy_after_return<Channel<int>>(d, p, Order::racing, rounds, seed_once(),
                                                                   maker(0, 0), recv_one, send_one, queued),
                    rounds);
      INFO(side_name(d) << " sends and destroys; " << side_name(p) << " receives at the same time");
      require_clean(weft::test::destroy_after_return<Channel<int>>(d, p, Order::racing, rounds, seed_once(),
                                                                   maker(0, 0), send_one, recv_one, queued),
                    rounds);
      INFO(side_name(d) << " waits in recv() and destroys; " << side_name(p) << " sends once it is queued");
      require_clean(weft::test::destroy_after_return<Channel<int>>(d, p, Order::destroyer_first, rounds, seed_once(),
                                                                   maker(0, 0), recv_one, send_one, queued),
                    rounds);
    }
}
