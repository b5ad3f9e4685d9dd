// net/address.cpp — Address parsing, formatting and sockaddr validation.
//
// Invariants: see address.hpp. Everything here is a pure function of its inputs
// (plus if_nametoindex/if_indextoname for IPv6 scope names); no shared state.
// Every constructor builds into a zeroed sockaddr_storage and sets len_ last, so
// bytes past len_ are zero and operator== may compare raw bytes.
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <weft/net/address.hpp>

namespace weft::net {

namespace {

constexpr socklen_t kUnixPathOffset = offsetof(sockaddr_un, sun_path);
constexpr std::size_t kSunPathCap = sizeof(sockaddr_un::sun_path);  // 108 on Linux

using detail::quoted;

[[noreturn]] void bad(const char* fn, std::string_view input, const std::string& what) {
  throw std::invalid_argument(std::string("weft::net::Address::") + fn + "(" + quoted(input) + "): " + what);
}

bool is_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

bool has_alpha(std::string_view s) {
  for (char c : s)
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return false;
}

std::uint16_t parse_port(const char* fn, std::string_view input, std::string_view p) {
  if (p.empty()) bad(fn, input, "missing port after ':'");
  if (!is_digits(p)) bad(fn, input, "port " + quoted(p) + " is not a decimal number");
  unsigned long v = 0;
  for (char c : p) {
    v = v * 10 + static_cast<unsigned long>(c - '0');
    if (v > 65535) bad(fn, input, "port " + quoted(p) + " is out of range (0-65535)");
  }
  return static_cast<std::uint16_t>(v);
}

/// Strict dotted quad: exactly 4 decimal octets 0-255, no leading zeros.
in_addr parse_ipv4(const char* fn, std::string_view input, std::string_view h) {
  if (h.empty()) bad(fn, input, "missing host before ':'");
  if (has_alpha(h))
    bad(fn, input, quoted(h) + " is not a numeric IPv4 address (host names go through weft::net::resolve)");
  std::uint32_t addr = 0;
  int octets = 0;
  auto octet_bad = [&](std::string_view part, const char* what) {
    bad(fn, input, "IPv4 address " + quoted(h) + ": octet " + std::to_string(octets) + " " + quoted(part) + what);
  };
  std::size_t pos = 0;
  while (true) {
    const std::size_t dot = h.find('.', pos);
    const std::string_view part = h.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos);
    ++octets;
    if (octets > 4) bad(fn, input, "IPv4 address " + quoted(h) + " has more than 4 octets");
    if (part.empty()) bad(fn, input, "IPv4 address " + quoted(h) + " has an empty octet " + std::to_string(octets));
    if (!is_digits(part)) octet_bad(part, " is not a decimal number");
    if (part.size() > 1 && part[0] == '0') octet_bad(part, " has a leading zero (ambiguous: octal?)");
    unsigned v = 0;
    for (char c : part) {
      v = v * 10 + static_cast<unsigned>(c - '0');
      if (v > 255) break;
    }
    if (v > 255 || part.size() > 3) octet_bad(part, " is out of range (0-255)");
    addr = (addr << 8) | v;
    if (dot == std::string_view::npos) break;
    pos = dot + 1;
  }
  if (octets != 4)
    bad(fn, input, "IPv4 address " + quoted(h) + " has " + std::to_string(octets) + " octets, expected 4");
  in_addr a{};
  a.s_addr = htonl(addr);
  return a;
}

/// "fe80::1" or "fe80::1%lo" / "fe80::1%2" (no brackets).
sockaddr_in6 parse_ipv6(const char* fn, std::string_view input, std::string_view h) {
  sockaddr_in6 s{};
  s.sin6_family = AF_INET6;
  std::string_view addr = h;
  const std::size_t pct = h.find('%');
  if (pct != std::string_view::npos) {
    addr = h.substr(0, pct);
    const std::string_view scope = h.substr(pct + 1);
    if (scope.empty()) bad(fn, input, "empty IPv6 scope after '%'");
    if (is_digits(scope)) {
      unsigned long long v = 0;
      for (char c : scope) {
        v = v * 10 + static_cast<unsigned long long>(c - '0');
        if (v > 0xffffffffULL) bad(fn, input, "IPv6 scope id " + quoted(scope) + " is out of range");
      }
      s.sin6_scope_id = static_cast<std::uint32_t>(v);
    } else {
      if (scope.size() >= IF_NAMESIZE) bad(fn, input, "interface name " + quoted(scope) + " is too long");
      const std::string name(scope);
      const unsigned idx = if_nametoindex(name.c_str());
      if (idx == 0) bad(fn, input, "unknown network interface " + quoted(scope) + " in IPv6 scope");
      s.sin6_scope_id = idx;
    }
  }
  if (addr.empty()) bad(fn, input, "missing IPv6 address");
  if (addr.size() >= INET6_ADDRSTRLEN) bad(fn, input, quoted(addr) + " is too long for an IPv6 address");
  const std::string a(addr);
  if (inet_pton(AF_INET6, a.c_str(), &s.sin6_addr) != 1) bad(fn, input, quoted(addr) + " is not a valid IPv6 address");
  return s;
}

template <class T>
Address from_struct(const T& s) {
  return Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&s), sizeof s);
}

Address make_v4(in_addr a, std::uint16_t port) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_port = htons(port);
  s.sin_addr = a;
  return from_struct(s);
}

/// Numeric host: IPv6 if it has a ':' (brackets optional), else IPv4.
Address host_port(const char* fn, std::string_view input, std::string_view h, std::uint16_t port) {
  if (h.empty()) bad(fn, input, "empty host");
  if (h.front() == '[') {
    if (h.back() != ']') bad(fn, input, "unbalanced '[' in host");
    h = h.substr(1, h.size() - 2);
    if (h.find(':') == std::string_view::npos) bad(fn, input, "brackets are only for IPv6 addresses");
  } else if (h.find(']') != std::string_view::npos) {
    bad(fn, input, "unbalanced ']' in host");
  }
  if (h.find(':') != std::string_view::npos) {
    sockaddr_in6 s = parse_ipv6(fn, input, h);
    s.sin6_port = htons(port);
    return from_struct(s);
  }
  return make_v4(parse_ipv4(fn, input, h), port);
}

}  // namespace

std::string detail::quoted(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out + "\"";
}

Address Address::parse(std::string_view text) {
  const char* const fn = "parse";
  if (text.empty()) bad(fn, text, "empty address (expected \"host:port\", \"[v6]:port\" or \"unix:/path\")");
  if (text.substr(0, 5) == "unix:") {
    const std::string_view path = text.substr(5);
    if (path.empty()) bad(fn, text, "empty unix socket path after \"unix:\"");
    return unix_path(path);
  }
  if (text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) bad(fn, text, "unbalanced '[': missing ']' after the IPv6 address");
    const std::string_view h = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (rest.empty()) bad(fn, text, "missing \":port\" after ']'");
    if (rest.front() != ':') bad(fn, text, "expected ':' after ']', got " + quoted(rest));
    if (h.find('[') != std::string_view::npos) bad(fn, text, "unbalanced '[' inside brackets");
    if (h.empty()) bad(fn, text, "empty IPv6 address inside brackets");
    const std::uint16_t port = parse_port(fn, text, rest.substr(1));
    sockaddr_in6 s = parse_ipv6(fn, text, h);
    s.sin6_port = htons(port);
    return from_struct(s);
  }
  if (text.find(']') != std::string_view::npos) bad(fn, text, "unbalanced ']' without '['");
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) bad(fn, text, "missing \":port\"");
  const std::string_view h = text.substr(0, colon);
  if (h.find(':') != std::string_view::npos)
    bad(fn, text, "an IPv6 address with a port needs brackets, e.g. \"[::1]:80\"");
  const std::uint16_t port = parse_port(fn, text, text.substr(colon + 1));
  return make_v4(parse_ipv4(fn, text, h), port);
}

std::optional<Address> Address::try_parse(std::string_view text) noexcept {
  try {
    return parse(text);
  } catch (...) {  // invalid_argument, or bad_alloc building its message
    return std::nullopt;
  }
}

Address Address::from_host_port(std::string_view numeric_host, std::uint16_t port) {
  return host_port("from_host_port", numeric_host, numeric_host, port);
}

Address Address::ipv4_any(std::uint16_t port) {
  in_addr a{};
  a.s_addr = htonl(INADDR_ANY);
  return make_v4(a, port);
}

Address Address::ipv4_loopback(std::uint16_t port) {
  in_addr a{};
  a.s_addr = htonl(INADDR_LOOPBACK);
  return make_v4(a, port);
}

Address Address::ipv6_any(std::uint16_t port) {
  sockaddr_in6 s{};
  s.sin6_family = AF_INET6;
  s.sin6_port = htons(port);
  s.sin6_addr = in6addr_any;
  return from_struct(s);
}

Address Address::ipv6_loopback(std::uint16_t port) {
  sockaddr_in6 s{};
  s.sin6_family = AF_INET6;
  s.sin6_port = htons(port);
  s.sin6_addr = in6addr_loopback;
  return from_struct(s);
}

Address Address::unix_path(std::string_view path) {
  const char* const fn = "unix_path";
  if (path.empty()) bad(fn, path, "empty unix socket path");
  sockaddr_un s{};
  s.sun_family = AF_UNIX;
  if (path.front() == '@') {
    const std::string_view name = path.substr(1);
    if (name.empty()) bad(fn, path, "empty abstract socket name after '@'");
    if (name.size() + 1 > kSunPathCap)
      bad(fn, path,
          "abstract socket name is " + std::to_string(name.size()) + " bytes; at most " +
              std::to_string(kSunPathCap - 1) + " fit in sun_path");
    s.sun_path[0] = '\0';
    std::memcpy(s.sun_path + 1, name.data(), name.size());
    return from_sockaddr(reinterpret_cast<const sockaddr*>(&s),
                         static_cast<socklen_t>(kUnixPathOffset + 1 + name.size()));
  }
  if (path.find('\0') != std::string_view::npos) bad(fn, path, "unix socket path contains a NUL byte");
  if (path.size() + 1 > kSunPathCap)
    bad(fn, path,
        "unix socket path is " + std::to_string(path.size()) + " bytes; at most " + std::to_string(kSunPathCap - 1) +
            " fit in sun_path");
  std::memcpy(s.sun_path, path.data(), path.size());
  return from_sockaddr(reinterpret_cast<const sockaddr*>(&s),
                       static_cast<socklen_t>(kUnixPathOffset + path.size() + 1));
}

Address Address::from_sockaddr(const sockaddr* sa, socklen_t len) {
  auto fail = [&](const std::string& what) -> void {
    throw std::invalid_argument("weft::net::Address::from_sockaddr: " + what);
  };
  if (!sa) fail("null sockaddr");
  if (len < static_cast<socklen_t>(sizeof(sa_family_t)) || len > capacity())
    fail("length " + std::to_string(len) + " is outside " + std::to_string(sizeof(sa_family_t)) + ".." +
         std::to_string(capacity()));
  Address out;
  switch (sa->sa_family) {
    case AF_INET: {
      if (len != sizeof(sockaddr_in))
        fail("AF_INET length " + std::to_string(len) + ", expected " + std::to_string(sizeof(sockaddr_in)));
      sockaddr_in s;
      std::memcpy(&s, sa, sizeof s);
      std::memset(s.sin_zero, 0, sizeof s.sin_zero);
      std::memcpy(&out.ss_, &s, sizeof s);
      out.len_ = sizeof s;
      return out;
    }
    case AF_INET6: {
      if (len != sizeof(sockaddr_in6))
        fail("AF_INET6 length " + std::to_string(len) + ", expected " + std::to_string(sizeof(sockaddr_in6)));
      std::memcpy(&out.ss_, sa, sizeof(sockaddr_in6));
      out.len_ = sizeof(sockaddr_in6);
      return out;
    }
    case AF_UNIX: {
      if (len > sizeof(sockaddr_un))
        fail("AF_UNIX length " + std::to_string(len) + " exceeds " + std::to_string(sizeof(sockaddr_un)));
      // Copy only `len` bytes: the caller's object may be exactly that long.
      std::memcpy(&out.ss_, sa, len);
      auto* un = reinterpret_cast<sockaddr_un*>(&out.ss_);
      const std::size_t n = len - kUnixPathOffset;  // bytes of sun_path given (0 = unnamed)
      if (n > 0 && un->sun_path[0] != '\0') {
        // Filesystem path: the kernel may or may not count the NUL; normalize to
        // "path + one NUL" (capped at sun_path) so equal paths compare equal.
        const std::size_t plen = strnlen(un->sun_path, n);
        std::memset(un->sun_path + plen, 0, kSunPathCap - plen);
        out.len_ = static_cast<socklen_t>(kUnixPathOffset + std::min(plen + 1, kSunPathCap));
      } else {
        out.len_ = len;  // unnamed, or abstract: exactly its bytes
      }
      return out;
    }
    default:
      fail("unknown address family " + std::to_string(sa->sa_family) + " (expected AF_INET, AF_INET6 or AF_UNIX)");
  }
  return out;  // not reached
}

void Address::set_size(socklen_t len) {
  const sockaddr_storage copy = ss_;
  ss_ = {};
  len_ = 0;  // none until validated
  *this = from_sockaddr(reinterpret_cast<const sockaddr*>(&copy), len);
}

Address::Family Address::family() const noexcept {
  if (len_ == 0) return Family::none;
  if (ss_.ss_family == AF_INET) return Family::ipv4;
  if (ss_.ss_family == AF_INET6) return Family::ipv6;
  return ss_.ss_family == AF_UNIX ? Family::unix_path : Family::none;
}

int Address::domain() const noexcept {
  return len_ == 0 ? AF_UNSPEC : ss_.ss_family;
}

std::uint16_t Address::port() const noexcept {
  if (family() == Family::ipv4) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss_)->sin_port);
  if (family() == Family::ipv6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_port);
  return 0;
}

std::uint32_t Address::scope_id() const noexcept {
  return family() == Family::ipv6 ? reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_scope_id : 0;
}

bool Address::is_loopback() const noexcept {
  if (family() == Family::ipv4)
    return (ntohl(reinterpret_cast<const sockaddr_in*>(&ss_)->sin_addr.s_addr) >> 24) == 127;
  if (family() == Family::ipv6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
    return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127;
  }
  return false;
}

Address Address::with_port(std::uint16_t port) const {
  Address out = *this;
  if (family() == Family::ipv4) {
    reinterpret_cast<sockaddr_in*>(&out.ss_)->sin_port = htons(port);
  } else if (family() == Family::ipv6) {
    reinterpret_cast<sockaddr_in6*>(&out.ss_)->sin6_port = htons(port);
  } else {
    throw std::logic_error("weft::net::Address::with_port: " + to_string() + " has no port (not an IP address)");
  }
  return out;
}

std::string Address::host() const {
  char buf[INET6_ADDRSTRLEN + 1 + IF_NAMESIZE + 1] = {};
  switch (family()) {
    case Family::ipv4:
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss_)->sin_addr, buf, sizeof buf);
      return buf;
    case Family::ipv6: {
      const auto* s = reinterpret_cast<const sockaddr_in6*>(&ss_);
      inet_ntop(AF_INET6, &s->sin6_addr, buf, INET6_ADDRSTRLEN);
      std::string out = buf;
      if (s->sin6_scope_id != 0) {
        char name[IF_NAMESIZE] = {};
        out += '%';
        out += if_indextoname(s->sin6_scope_id, name) ? std::string(name) : std::to_string(s->sin6_scope_id);
      }
      return out;
    }
    case Family::unix_path: {
      const auto* un = reinterpret_cast<const sockaddr_un*>(&ss_);
      const std::size_t n = len_ - kUnixPathOffset;
      if (n == 0) return {};  // unnamed
      if (un->sun_path[0] == '\0') {
        // Appended, not "@" + std::string(...): g++ 12 warns on that (-Wrestrict,
        // a false positive inside std::string).
        std::string s = "@";
        s.append(un->sun_path + 1, n - 1);
        return s;
      }
      return std::string(un->sun_path, strnlen(un->sun_path, n));
    }
    case Family::none:
      break;
  }
  return {};
}

std::string Address::to_string() const {
  if (family() == Family::ipv4) return host() + ":" + std::to_string(port());
  if (family() == Family::ipv6) {
    std::string s = "[";  // appended in turn: see host()
    s += host();
    s += "]:";
    s += std::to_string(port());
    return s;
  }
  if (family() == Family::unix_path)
    return std::string("unix:") += host();  // "unix:" alone if unnamed (does not parse back)
  return "<no address>";
}

bool operator==(const Address& a, const Address& b) noexcept {
  return a.len_ == b.len_ && std::memcmp(&a.ss_, &b.ss_, a.len_) == 0;
}

}  // namespace weft::net
