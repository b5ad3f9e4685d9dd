// Address: text round trips for IPv4, IPv6 (with scope id), unix paths and
// abstract names; every malformed input is refused with std::invalid_argument
// whose message names the input and the fault; kernel-filled sockaddrs are
// validated by family and length.
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>

#include <weft/net/address.hpp>

using weft::net::Address;
using Family = Address::Family;

namespace {

/// parse(text) throws std::invalid_argument whose message contains every fragment.
void require_rejected(const std::string& text, std::initializer_list<const char*> fragments) {
  INFO("input: " << text);
  try {
    (void)Address::parse(text);
    FAIL("parse accepted bad input");
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    for (const char* f : fragments) CHECK(msg.find(f) != std::string::npos);
  }
  CHECK_FALSE(Address::try_parse(text).has_value());
}

std::string loopback_name() {
  char name[IF_NAMESIZE] = {};
  return if_indextoname(1, name) ? std::string(name) : std::string();
}

}  // namespace

TEST_CASE("a default Address is none and formats without crashing") {
  Address a;
  CHECK(a.family() == Family::none);
  CHECK(a.domain() == AF_UNSPEC);
  CHECK(a.port() == 0);
  CHECK(a.size() == 0);
  CHECK(a.host().empty());
  CHECK_FALSE(a.to_string().empty());
  CHECK_THROWS_AS(a.with_port(1), std::logic_error);
  CHECK(a == Address());
}

TEST_CASE("IPv4 text round-trips through parse and to_string") {
  for (const char* text : {"1.2.3.4:80", "0.0.0.0:0", "255.255.255.255:65535", "127.0.0.1:8080"}) {
    INFO(text);
    const Address a = Address::parse(text);
    CHECK(a.family() == Family::ipv4);
    CHECK(a.domain() == AF_INET);
    CHECK(a.size() == sizeof(sockaddr_in));
    CHECK(a.to_string() == text);
    CHECK(Address::parse(a.to_string()) == a);
  }
  const Address a = Address::parse("10.0.0.7:443");
  CHECK(a.host() == "10.0.0.7");
  CHECK(a.port() == 443);
  const auto* sin = reinterpret_cast<const sockaddr_in*>(a.sockaddr_ptr());
  CHECK(sin->sin_port == htons(443));
  CHECK(sin->sin_addr.s_addr == htonl(0x0a000007));
  CHECK(a.with_port(1).to_string() == "10.0.0.7:1");
  CHECK(a.with_port(1) != a);
}

TEST_CASE("IPv6 text round-trips through parse and to_string, including a scope id") {
  for (const char* text : {"[::1]:80", "[::]:0", "[2001:db8::1]:65535", "[::ffff:1.2.3.4]:7"}) {
    INFO(text);
    const Address a = Address::parse(text);
    CHECK(a.family() == Family::ipv6);
    CHECK(a.domain() == AF_INET6);
    CHECK(a.size() == sizeof(sockaddr_in6));
    CHECK(a.to_string() == text);
    CHECK(Address::parse(a.to_string()) == a);
  }
  CHECK(Address::parse("[2001:DB8:0:0::1]:1").to_string() == "[2001:db8::1]:1");  // canonical form

  const Address n = Address::parse("[fe80::1%1]:80");
  CHECK(n.scope_id() == 1);
  CHECK(Address::parse(n.to_string()) == n);
  const std::string lo = loopback_name();
  if (!lo.empty()) {
    const Address s = Address::parse("[fe80::1%" + lo + "]:80");
    CHECK(s.scope_id() == 1);
    CHECK(s.host() == "fe80::1%" + lo);
    CHECK(s.to_string() == "[fe80::1%" + lo + "]:80");
    CHECK(s == n);
  }
  CHECK(Address::parse("[fe80::1]:80").scope_id() == 0);
}

TEST_CASE("unix paths and abstract names round-trip through parse and to_string") {
  const Address p = Address::parse("unix:/tmp/weft.sock");
  CHECK(p.family() == Family::unix_path);
  CHECK(p.domain() == AF_UNIX);
  CHECK(p.port() == 0);
  CHECK(p.host() == "/tmp/weft.sock");
  CHECK(p.to_string() == "unix:/tmp/weft.sock");
  CHECK(Address::parse(p.to_string()) == p);
  CHECK(p.size() == offsetof(sockaddr_un, sun_path) + std::strlen("/tmp/weft.sock") + 1);
  CHECK_THROWS_AS(p.with_port(1), std::logic_error);

  const Address rel = Address::parse("unix:relative.sock");
  CHECK(rel.host() == "relative.sock");

  const Address ab = Address::parse("unix:@weft-abstract");
  CHECK(ab.family() == Family::unix_path);
  CHECK(ab.host() == "@weft-abstract");
  CHECK(ab.to_string() == "unix:@weft-abstract");
  CHECK(Address::parse(ab.to_string()) == ab);
  const auto* un = reinterpret_cast<const sockaddr_un*>(ab.sockaddr_ptr());
  CHECK(un->sun_path[0] == '\0');
  CHECK(ab.size() == offsetof(sockaddr_un, sun_path) + 1 + std::strlen("weft-abstract"));
  CHECK(ab != Address::parse("unix:weft-abstract"));

  CHECK(Address::unix_path("/x") == Address::parse("unix:/x"));
  const std::string longest(sizeof(sockaddr_un::sun_path) - 1, 'a');
  CHECK(Address::unix_path(longest).host() == longest);
  CHECK(Address::unix_path("@" + longest).host() == "@" + longest);
}

TEST_CASE("the named constructors build any and loopback addresses") {
  CHECK(Address::ipv4_any(80).to_string() == "0.0.0.0:80");
  CHECK(Address::ipv4_loopback(81).to_string() == "127.0.0.1:81");
  CHECK(Address::ipv6_any(82).to_string() == "[::]:82");
  CHECK(Address::ipv6_loopback(83).to_string() == "[::1]:83");
  CHECK(Address::ipv4_loopback(1).is_loopback());
  CHECK(Address::ipv6_loopback(1).is_loopback());
  CHECK_FALSE(Address::ipv4_any(1).is_loopback());
  CHECK(Address::from_host_port("127.0.0.1", 9) == Address::ipv4_loopback(9));
  CHECK(Address::from_host_port("::1", 9) == Address::ipv6_loopback(9));
  CHECK(Address::from_host_port("[::1]", 9) == Address::ipv6_loopback(9));
  CHECK(Address::from_host_port("fe80::1%1", 9).scope_id() == 1);
  CHECK_THROWS_AS(Address::from_host_port("localhost", 9), std::invalid_argument);
  CHECK_THROWS_AS(Address::from_host_port("", 9), std::invalid_argument);
  CHECK_THROWS_AS(Address::from_host_port("1.2.3", 9), std::invalid_argument);
}

TEST_CASE("a bad octet is refused with a message naming the input and the octet") {
  require_rejected("1.2.3.256:80", {"1.2.3.256:80", "octet 4", "256", "out of range"});
  require_rejected("1.2.3:80", {"3 octets"});
  require_rejected("1.2.3.4.5:80", {"more than 4 octets"});
  require_rejected("1..3.4:80", {"empty octet"});
  require_rejected("1.2.x3.4:80", {"not a numeric IPv4 address"});
  require_rejected("01.2.3.4:80", {"leading zero"});
  require_rejected("1.2.3.-4:80", {"not a decimal number"});
  require_rejected("1.2.3.99999999999999999999:80", {"out of range"});
}

TEST_CASE("a bad or missing port is refused with a useful message") {
  require_rejected("1.2.3.4:65536", {"port", "65536", "out of range"});
  require_rejected("[::1]:99999999999999999999999", {"out of range"});
  require_rejected("1.2.3.4", {"missing \":port\""});
  require_rejected("1.2.3.4:", {"missing port"});
  require_rejected("[::1]", {"missing \":port\""});
  require_rejected("[::1]:", {"missing port"});
  require_rejected("1.2.3.4:8o", {"not a decimal number"});
  require_rejected("1.2.3.4:-1", {"not a decimal number"});
  require_rejected("1.2.3.4: 80", {"not a decimal number"});
}

TEST_CASE("junk, names and unbracketed IPv6 are refused") {
  require_rejected("", {"empty address"});
  require_rejected("junk", {"\"junk\"", "missing \":port\""});
  require_rejected("localhost:80", {"not a numeric IPv4 address", "resolve"});
  require_rejected("::1:80", {"needs brackets"});
  require_rejected(":80", {"missing host"});
  require_rejected("[zz::1]:80", {"not a valid IPv6 address"});
  require_rejected("[::1]x80", {"expected ':' after ']'"});
  require_rejected("[fe80::1%]:80", {"empty IPv6 scope"});
  require_rejected("[fe80::1%no-such-if0]:80", {"unknown network interface"});
  require_rejected("[fe80::1%99999999999]:80", {"out of range"});
  require_rejected(std::string("1.2.3.4:8\0", 10), {"\\x00"});
  require_rejected("\x01\xff", {"\\x01\\xff"});
}

TEST_CASE("unbalanced brackets are refused") {
  require_rejected("[::1:80", {"unbalanced '['"});
  require_rejected("::1]:80", {"unbalanced ']'"});
  require_rejected("[[::1]:80", {"unbalanced '['"});
  require_rejected("[]:80", {"empty IPv6 address"});
  CHECK_THROWS_AS(Address::from_host_port("[::1", 1), std::invalid_argument);
  CHECK_THROWS_AS(Address::from_host_port("::1]", 1), std::invalid_argument);
}

TEST_CASE("an empty or too long unix path is refused") {
  require_rejected("unix:", {"empty unix socket path"});
  require_rejected("unix:@", {"empty abstract socket name"});
  const std::string too_long(sizeof(sockaddr_un::sun_path), 'a');
  require_rejected("unix:" + too_long, {"108 bytes", "at most 107"});
  require_rejected("unix:@" + too_long, {"abstract socket name", "at most 107"});
  CHECK_THROWS_AS(Address::unix_path(""), std::invalid_argument);
  CHECK_THROWS_AS(Address::unix_path(std::string("a\0b", 3)), std::invalid_argument);
  try {
    (void)Address::unix_path(too_long);
    FAIL("accepted");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("unix_path") != std::string::npos);
  }
}

TEST_CASE("from_sockaddr accepts each family as the kernel fills it") {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(5);
  sin.sin_addr.s_addr = htonl(0x7f000001);
  std::memset(sin.sin_zero, 0xab, sizeof sin.sin_zero);  // junk in padding is ignored
  const Address a4 = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&sin), sizeof sin);
  CHECK(a4 == Address::ipv4_loopback(5));

  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(6);
  sin6.sin6_addr = in6addr_loopback;
  CHECK(Address::from_sockaddr(reinterpret_cast<sockaddr*>(&sin6), sizeof sin6) == Address::ipv6_loopback(6));

  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::strcpy(un.sun_path, "/run/x.sock");
  const auto off = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path));
  // With or without the NUL counted, and with the whole struct: the same address.
  const Address u1 = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&un), off + 11);
  const Address u2 = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&un), off + 12);
  const Address u3 = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&un), sizeof un);
  CHECK(u1.host() == "/run/x.sock");
  CHECK(u1 == u2);
  CHECK(u2 == u3);
  CHECK(u1 == Address::unix_path("/run/x.sock"));

  // An unnamed unix socket (socketpair, unbound client): just the family.
  const Address unnamed = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&un), sizeof(sa_family_t));
  CHECK(unnamed.family() == Family::unix_path);
  CHECK(unnamed.host().empty());

  // A real getsockname on an abstract socket bound by name.
  const Address want = Address::unix_path("@weft-address-test-" + std::to_string(getpid()));
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  REQUIRE(bind(fd, want.sockaddr_ptr(), want.size()) == 0);
  Address got;
  socklen_t len = Address::capacity();
  REQUIRE(getsockname(fd, got.storage(), &len) == 0);
  got.set_size(len);
  close(fd);
  CHECK(got == want);
  CHECK(got.to_string() == want.to_string());
}

TEST_CASE("from_sockaddr and set_size refuse a bad family or length") {
  sockaddr_storage ss{};
  auto* sa = reinterpret_cast<sockaddr*>(&ss);
  ss.ss_family = AF_INET;
  CHECK_THROWS_WITH(Address::from_sockaddr(sa, sizeof(sockaddr_in) - 1), Catch::Contains("AF_INET length"));
  CHECK_THROWS_AS(Address::from_sockaddr(sa, sizeof(sockaddr_in) + 1), std::invalid_argument);
  ss.ss_family = AF_INET6;
  CHECK_THROWS_WITH(Address::from_sockaddr(sa, sizeof(sockaddr_in)), Catch::Contains("AF_INET6 length"));
  ss.ss_family = AF_UNIX;
  CHECK_THROWS_AS(Address::from_sockaddr(sa, sizeof(sockaddr_un) + 1), std::invalid_argument);
  ss.ss_family = AF_APPLETALK;
  CHECK_THROWS_WITH(Address::from_sockaddr(sa, 16), Catch::Contains("unknown address family"));
  CHECK_THROWS_AS(Address::from_sockaddr(sa, 0), std::invalid_argument);
  CHECK_THROWS_AS(Address::from_sockaddr(sa, Address::capacity() + 1), std::invalid_argument);
  CHECK_THROWS_AS(Address::from_sockaddr(nullptr, 16), std::invalid_argument);

  Address a = Address::ipv4_loopback(1);
  a.storage()->sa_family = AF_APPLETALK;
  CHECK_THROWS_AS(a.set_size(16), std::invalid_argument);
  CHECK(a.family() == Family::none);  // a failed set_size leaves none, not half an address
  Address b;
  std::memcpy(b.storage(), Address::ipv6_loopback(7).sockaddr_ptr(), sizeof(sockaddr_in6));
  b.set_size(sizeof(sockaddr_in6));
  CHECK(b == Address::ipv6_loopback(7));
}
