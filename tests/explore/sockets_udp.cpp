// tests/explore/sockets_udp.cpp — the UDP part of the sockets scenario: a
// windowed, sequence-numbered exchange between two sockets on random workers, and
// a UDP socket closed under pending receives.
//
// Invariants checked:
//  - each datagram arrives intact (its payload is a function of its sequence
//    number and length), at most once and in order (loopback keeps the order);
//  - every send that returned arrives: the end marker carries the number of sends
//    that returned, and the receiver must have seen exactly that many (a send or
//    receive that failed did not move a datagram: the explorer fails ops without
//    issuing them);
//  - a window of 8 unacknowledged datagrams keeps the receive buffer from
//    overflowing, so loopback never drops one.
#include <cstring>
#include <vector>

#include "sockets.hpp"

namespace weft::explore::sockets {

namespace {

constexpr std::uint32_t kEnd = 0xffffffffu;

std::size_t fill(std::vector<char>& b, std::uint32_t seq, std::uint32_t arg, std::size_t len) {
  std::memcpy(b.data(), &seq, 4);
  std::memcpy(b.data() + 4, &arg, 4);
  for (std::size_t i = 8; i < len; ++i) b[i] = static_cast<char>(byte_at(0xd000 + seq, i));
  return len;
}

}  // namespace

void udp_exchange(weft::Runtime& rt, const Run& run, Rng& r, unsigned workers, bool interrupted) {
  using weft::net::Address;
  using weft::net::UdpSocket;
  const unsigned wtx = static_cast<unsigned>(r.next() % workers), wrx = static_cast<unsigned>(r.next() % workers);
  const std::uint32_t count = static_cast<std::uint32_t>(r.between(1, 60));
  UdpSocket rx = retry_no_memory(run, "UdpSocket::bind", [] { return UdpSocket::bind(Address::parse("127.0.0.1:0")); });
  UdpSocket tx = retry_no_memory(run, "UdpSocket::bind", [] { return UdpSocket::bind(Address::parse("127.0.0.1:0")); });
  const bool connected = r.next() % 2;
  if (connected) tx.connect(rx.local_address());
  const Address to = rx.local_address();
  weft::Semaphore window(rt, 8, "udp window");
  std::uint32_t received = 0;
  JoinSet pair(run);  // after what its fibers use
  const std::uint64_t stx = r.next(), srx = r.next();

  pair.add(rt.spawn_on(wtx,
                       [&, s = std::move(tx)]() mutable {
                         Rng fr(stx);
                         std::vector<char> b(1500);
                         std::uint32_t ok = 0;
                         auto send_one = [&](std::size_t len) -> bool {
                           try {
                             const auto tmo = fr.next() % 2 ? weft::net::Timeout(kLong) : weft::net::kNoTimeout;
                             const std::size_t n = connected && fr.next() % 2 ? s.send(b.data(), len, tmo)
                                                                              : s.send_to(b.data(), len, to, tmo);
                             EXPECT(n == len,
                                    "a datagram was sent in part: " + std::to_string(n) + " of " + std::to_string(len));
                             return true;
                           } catch (...) {
                             const Outcome o = classify(run, std::current_exception(), "UdpSocket::send");
                             if (o == Outcome::fiber_cancelled) throw;
                             // A shutdown may close the receiver first: a connected socket then
                             // learns of the closed port (ICMP) and its next send is refused.
                             const bool peer_gone = interrupted && connected && o == Outcome::refused;
                             EXPECT(o == Outcome::no_buffers || o == Outcome::no_memory || o == Outcome::timed_out ||
                                        o == Outcome::canceled || peer_gone,
                                    std::string("UdpSocket::send ended with ") + name_of(o));
                             return false;
                           }
                         };
                         for (std::uint32_t seq = 0; seq < count; ++seq) {
                           window.acquire();
                           if (send_one(fill(b, seq, 0, fr.between(8, 1400))))
                             ++ok;
                           else
                             window.release();  // it never left
                           if (fr.next() % 6 == 0) jitter(fr, 2);
                         }
                         for (int tries = 0; !send_one(fill(b, kEnd, ok, 8)); ++tries)
                           EXPECT(tries < 1000, "the end marker could not be sent in 1000 tries");
                       },
                       {.name = "udp sender"}));
  pair.add(rt.spawn_on(wrx,
                       [&, s = std::move(rx)]() mutable {
                         Rng fr(srx);
                         std::vector<char> b(2048);
                         std::int64_t last = -1;
                         for (;;) {
                           std::size_t n = 0;
                           try {
                             weft::net::Address from;
                             n = s.recv_from(b.data(), b.size(), fr.next() % 2 ? &from : nullptr, kLong);
                           } catch (...) {
                             const Outcome o = classify(run, std::current_exception(), "UdpSocket::recv_from");
                             if (o == Outcome::fiber_cancelled) throw;
                             EXPECT(o == Outcome::no_buffers || o == Outcome::no_memory || o == Outcome::timed_out ||
                                        o == Outcome::canceled,
                                    std::string("UdpSocket::recv_from ended with ") + name_of(o));
                             continue;  // it was never issued: nothing was taken
                           }
                           EXPECT(n >= 8, "a datagram of " + std::to_string(n) + " bytes");
                           std::uint32_t seq, arg;
                           std::memcpy(&seq, b.data(), 4);
                           std::memcpy(&arg, b.data() + 4, 4);
                           if (seq == kEnd) {
                             EXPECT(received == arg, std::to_string(arg) + " datagrams were sent but " +
                                                         std::to_string(received) + " arrived");
                             return;
                           }
                           EXPECT(static_cast<std::int64_t>(seq) > last, "datagram " + std::to_string(seq) +
                                                                             " arrived after " + std::to_string(last) +
                                                                             " (duplicated or reordered)");
                           last = seq;
                           for (std::size_t i = 8; i < n; ++i)
                             EXPECT(static_cast<std::uint8_t>(b[i]) == byte_at(0xd000 + seq, i),
                                    "datagram " + std::to_string(seq) + " corrupted at byte " + std::to_string(i));
                           ++received;
                           window.release();
                         }
                       },
                       {.name = "udp receiver"}));
  if (auto f = pair.join())
    EXPECT(interrupted && (f->outcome == Outcome::fiber_cancelled || f->outcome == Outcome::shut_down),
           "a UDP fiber ended with " + f->text);

  // A socket closed while fibers wait in recv_from: they end with the close.
  UdpSocket lone =
      retry_no_memory(run, "UdpSocket::bind", [] { return UdpSocket::bind(Address::parse("127.0.0.1:0")); });
  const unsigned w = static_cast<unsigned>(r.next() % workers);
  JoinSet race(run);
  race.add(rt.spawn_on(w,
                       [&, s = std::move(lone)]() mutable {
                         Rng fr(srx ^ 0x10e);
                         char b[64];
                         close_race(
                             rt, w, run, fr, "UdpSocket::recv_from",
                             [&](weft::net::Timeout t) { return s.recv_from(b, sizeof b, nullptr, t); },
                             [&] { s.close(); });
                       },
                       {.name = "udp close race"}));
  if (auto f = race.join())
    EXPECT(interrupted && (f->outcome == Outcome::fiber_cancelled || f->outcome == Outcome::shut_down),
           "a UDP close race ended with " + f->text);
}

}  // namespace weft::explore::sockets
