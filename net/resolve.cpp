// net/resolve.cpp — resolve(): input checks, the numeric fast path, the pool path.
//
// Invariants (see resolve.hpp for the contract):
//  - The addrinfo list is allocated, converted and freed on one thread (the pool
//    thread for names, the caller for numeric hosts); it never crosses threads.
//  - The pool task (a lambda) owns std::string copies of host and service and a
//    by-value addrinfo hints (all its pointers null); it never refers to the
//    fiber's frame, so a lookup that outlives its deadline writes only into
//    offload's heap state, which the pool side destroys (offload.hpp).
//  - errno for EAI_SYSTEM is read on the thread that called getaddrinfo, right
//    after the call, and carried back as a value.
//  - No shared mutable state here: the error category is a function-local static
//    (thread-safe initialisation) with no data members.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <string>
#include <utility>

#include <weft/net/resolve.hpp>
#include <weft/runtime/threaded/offload.hpp>

namespace weft::net {

namespace {

class ResolveCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "weft.resolve"; }
  std::string message(int ev) const override {
    const char* m = gai_strerror(ev);
    return m ? m : "getaddrinfo error " + std::to_string(ev);
  }
};

/// What one getaddrinfo call produced, as values (no pointers into its list).
struct Lookup {
  int rc = 0;         ///< getaddrinfo's return (0 or EAI_*)
  int sys_errno = 0;  ///< errno when rc == EAI_SYSTEM
  std::vector<Address> addrs;
};

using detail::quoted;

std::string describe(std::string_view host, std::string_view service) {
  return "weft::net::resolve(" + quoted(host) + ", " + quoted(service) + ")";
}

bool is_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

/// A literal IPv4 or IPv6 address (with an optional %scope): getaddrinfo with
/// AI_NUMERICHOST will not touch DNS for it.
bool is_numeric_host(const std::string& h) {
  unsigned char buf[sizeof(in6_addr)];
  if (inet_pton(AF_INET, h.c_str(), buf) == 1) return true;
  const std::string addr = h.substr(0, h.find('%'));
  return inet_pton(AF_INET6, addr.c_str(), buf) == 1;
}

/// Runs `fn` and converts its list (dropping non-IP families and duplicates, in
/// order), freeing it before returning.
Lookup run_lookup(LookupFn fn, const std::string& host, const std::string* service, const addrinfo& hints) {
  Lookup out;
  addrinfo* res = nullptr;
  errno = 0;
  out.rc = fn(host.c_str(), service ? service->c_str() : nullptr, &hints, &res);
  if (out.rc == EAI_SYSTEM) out.sys_errno = errno;
  if (out.rc != 0) return out;  // on error the list is unspecified: not ours to free
  struct Free {
    addrinfo* p;
    ~Free() {
      if (p) freeaddrinfo(p);
    }
  } guard{res};
  for (const addrinfo* ai = res; ai; ai = ai->ai_next) {
    if (!ai->ai_addr || (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)) continue;
    Address a;
    try {
      a = Address::from_sockaddr(ai->ai_addr, ai->ai_addrlen);
    } catch (const std::invalid_argument&) {
      continue;  // a malformed entry from a resolver plug-in: skip it
    }
    if (std::find(out.addrs.begin(), out.addrs.end(), a) == out.addrs.end()) out.addrs.push_back(a);
  }
  if (out.addrs.empty()) out.rc = EAI_NONAME;  // nothing usable came back
  return out;
}

[[noreturn]] void throw_lookup_error(const Lookup& r, std::string_view host, std::string_view service) {
  if (r.rc == EAI_SYSTEM) {
    const int e = r.sys_errno != 0 ? r.sys_errno : EIO;
    detail::throw_net_error(detail::Failure::errno_result, -e, "",
                            describe(host, service) + ": getaddrinfo system error");
  }
  throw std::system_error(r.rc, resolve_category(), describe(host, service));
}

}  // namespace

const std::error_category& resolve_category() noexcept {
  static const ResolveCategory kCategory;
  return kCategory;
}

std::vector<Address> resolve(std::string_view host, std::string_view service, Timeout timeout, ResolveOptions opts) {
  if (host.empty()) throw std::invalid_argument(describe(host, service) + ": empty host name");
  if (host.find('\0') != std::string_view::npos || service.find('\0') != std::string_view::npos)
    throw std::invalid_argument(describe(host, service) + ": host or service contains a NUL byte");
  if (opts.family != AF_UNSPEC && opts.family != AF_INET && opts.family != AF_INET6)
    throw std::invalid_argument(describe(host, service) + ": family must be AF_UNSPEC, AF_INET or AF_INET6, not " +
                                std::to_string(opts.family));

  std::string h(host);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);  // "[::1]"

  addrinfo hints{};
  hints.ai_family = opts.family;
  hints.ai_socktype = opts.socktype;
  hints.ai_flags = opts.flags;

  // Service: empty = port 0 (no service); digits = a port, range-checked here;
  // anything else a service name for getaddrinfo.
  std::string svc(service);
  const bool has_service = !svc.empty();
  if (is_digits(svc)) {
    unsigned long port = 0;
    for (char c : svc) {
      port = port * 10 + static_cast<unsigned long>(c - '0');
      if (port > 65535)
        throw std::invalid_argument(describe(host, service) + ": port " + quoted(service) +
                                    " is out of range (0-65535)");
    }
    svc = std::to_string(port);
    hints.ai_flags |= AI_NUMERICSERV;
  }
  const std::string* svc_ptr = has_service ? &svc : nullptr;

  if (is_numeric_host(h)) {  // no DNS: run inline, never on the pool
    hints.ai_flags |= AI_NUMERICHOST;
    Lookup r = run_lookup(&::getaddrinfo, h, svc_ptr, hints);
    if (r.rc != 0) throw_lookup_error(r, host, service);
    return std::move(r.addrs);
  }

  const LookupFn fn = opts.detail_lookup ? opts.detail_lookup : &::getaddrinfo;
  // Everything the task touches is its own copy (see the top of the file).
  auto task = [fn, h, svc, has_service, hints]() { return run_lookup(fn, h, has_service ? &svc : nullptr, hints); };
  Lookup r;
  try {
    // The deadline saturates: kNoTimeout is a wait with no end. From a plain
    // thread: inline, no deadline.
    r = weft::offload_for(std::move(task), timeout);
  } catch (const std::system_error& e) {
    if (e.code() != std::errc::timed_out) throw;
    throw std::system_error(std::make_error_code(std::errc::timed_out),
                            describe(host, service) + ": no answer within " +
                                std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()) +
                                " ms (the lookup goes on in the pool; its result will be dropped)");
  }
  if (r.rc != 0) throw_lookup_error(r, host, service);
  return std::move(r.addrs);
}

HostPort split_host_port(std::string_view text) {
  auto bad = [&](const char* what) {
    throw std::invalid_argument("weft::net::split_host_port(" + quoted(text) + "): " + what);
  };
  if (text.empty()) bad("empty (expected \"host:port\" or \"[v6]:port\")");
  HostPort out;
  std::string_view rest;
  if (text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) bad("unbalanced '[': missing ']'");
    out.host = std::string(text.substr(1, close - 1));
    rest = text.substr(close + 1);
    if (out.host.find('[') != std::string::npos) bad("unbalanced '[' inside brackets");
    if (rest.empty()) bad("missing \":port\" after ']'");
    if (rest.front() != ':') bad("expected ':' after ']'");
  } else {
    if (text.find(']') != std::string_view::npos) bad("unbalanced ']' without '['");
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) bad("missing \":port\"");
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) bad("an IPv6 address with a port needs brackets, e.g. \"[::1]:80\"");
    rest = text.substr(colon);
  }
  out.service = std::string(rest.substr(1));
  if (out.host.empty()) bad("empty host");
  if (out.service.empty()) bad("empty port or service after ':'");
  return out;
}

std::vector<Address> resolve_host_port(std::string_view host_port, Timeout timeout, ResolveOptions opts) {
  HostPort hp = split_host_port(host_port);
  return resolve(hp.host, hp.service, timeout, opts);
}

}  // namespace weft::net
