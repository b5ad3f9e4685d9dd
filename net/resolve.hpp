// weft/net/resolve.hpp — name resolution: getaddrinfo on the runtime's Threaded pool.
//
// Invariants (states, owners, which thread touches what):
//  - From a fiber, a name lookup runs on the calling fiber's runtime's pool
//    (Runtime::pool()) through weft::offload_for: the fiber parks, a pool thread
//    calls getaddrinfo, converts the list to Addresses and frees it (freeaddrinfo)
//    on that same pool thread. Only the converted std::vector<Address> crosses back.
//  - The pool task owns copies of host and service (captured by value), never a
//    pointer into the fiber's frame. Past the deadline the fiber resumes with
//    std::system_error(std::errc::timed_out); the late result stays in offload's
//    shared state and is destroyed on the pool side when the lookup ends.
//  - A numeric host ("127.0.0.1", "::1", "[fe80::1%lo]") never goes to the pool:
//    getaddrinfo with AI_NUMERICHOST runs inline (no DNS; a named service reads
//    the local services database).
//  - From a plain thread (no running fiber) the lookup runs inline on the caller
//    and the timeout is not enforced (there is no fiber to park, and blocking a
//    thread on a pool thread gains nothing).
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <weft/net/address.hpp>
#include <weft/net/error.hpp>

namespace weft::net {

/// getaddrinfo's signature; see ResolveOptions::detail_lookup.
using LookupFn = int (*)(const char* host, const char* service, const addrinfo* hints, addrinfo** res);

struct ResolveOptions {
  int family = AF_UNSPEC;      ///< AF_UNSPEC, AF_INET or AF_INET6
  int socktype = SOCK_STREAM;  ///< SOCK_STREAM, SOCK_DGRAM, or 0 for any
  int flags = 0;               ///< extra AI_* flags for getaddrinfo (e.g. AI_PASSIVE, AI_ADDRCONFIG)
  /// Test-only: replaces getaddrinfo for name (non-numeric) lookups. It runs
  /// where getaddrinfo would (on the pool), and its list is freed with
  /// freeaddrinfo, so it must return one from getaddrinfo. Null: getaddrinfo.
  LookupFn detail_lookup = nullptr;
};

/// The category of getaddrinfo's EAI_* codes; message() is gai_strerror().
const std::error_category& resolve_category() noexcept;

/// Resolves `host` (a name, or a numeric IPv4/IPv6 address, brackets allowed) and
/// `service` (a decimal port 0-65535, a service name such as "http", or empty for
/// port 0) to addresses, in getaddrinfo's order with duplicates removed.
///
/// From a fiber a name lookup parks the fiber while a pool thread runs getaddrinfo
/// (see the top of this file); numeric hosts skip the pool; from a plain thread it
/// runs inline and `timeout` is ignored. `timeout` is a Timeout like every net
/// call's (error.hpp): a zero or negative one times out at once (unless the host
/// is numeric), kNoTimeout (or any duration too long) waits for the lookup.
///
/// Throws:
///  - std::invalid_argument: empty host, a NUL byte, a decimal port above 65535;
///  - std::system_error(resolve_category(), EAI_*) for getaddrinfo's errors, what()
///    naming host and service and ending in getaddrinfo's message; EAI_SYSTEM is
///    reported as the errno it carried, in std::generic_category();
///  - std::system_error(std::errc::timed_out) at the deadline;
///  - weft::FiberCancelled if the fiber is cancelled while it waits;
///  - weft::PoolShutDown if the runtime's pool is shut down.
std::vector<Address> resolve(std::string_view host, std::string_view service, Timeout timeout = std::chrono::seconds(5),
                             ResolveOptions opts = {});

/// A "host:service" string split in two (no lookup).
struct HostPort {
  std::string host;     ///< without brackets: "example.com", "1.2.3.4", "::1", "fe80::1%lo"
  std::string service;  ///< "80", "http"
};

/// Splits "example.com:80", "1.2.3.4:http", "[::1]:80", "[fe80::1%lo]:80". Throws
/// std::invalid_argument naming the input: empty host or service, no ':', an
/// unbracketed IPv6 address, unbalanced brackets.
HostPort split_host_port(std::string_view text);

/// resolve(host, service, ...) on split_host_port(host_port): "example.com:443".
std::vector<Address> resolve_host_port(std::string_view host_port, Timeout timeout = std::chrono::seconds(5),
                                       ResolveOptions opts = {});

}  // namespace weft::net
