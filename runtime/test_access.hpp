// weft/runtime/test_access.hpp — the tests' and benchmarks' door into private state.
//
// detail::TestAccess is the one friend the public classes name for their tests:
// through it a test reaches a Runtime's worker, a primitive's domain binding, or
// a listener bound with the syscalls, without a hook in the public API. Each
// function forwards to a private member; nothing here changes behaviour.
// Never installed: it names internal headers (runtime/uring/worker.hpp), and the
// installed tree's header list (tests/tools/installed_tree_test.py) leaves it out.
#pragma once

#include <weft/net/address.hpp>
#include <weft/net/tcp_listener.hpp>
#include <weft/runtime/runtime.hpp>
#include <weft/runtime/uring/worker.hpp>
#include <weft/sync/binding.hpp>

namespace weft::detail {

struct TestAccess {
  /// Worker `i` of `rt` (std::out_of_range when there is none).
  static Worker& worker(Runtime& rt, unsigned i) { return rt.worker(i); }

  /// TcpListener::bind, with `ring_ops` false: bind(2)/listen(2) even where the
  /// ring has IORING_OP_BIND/LISTEN (the path kernels before 6.11 take).
  static net::TcpListener bind_listener(const net::Address& addr, const net::ListenOptions& opts, bool ring_ops) {
    return net::TcpListener::bind_listen(addr, opts, ring_ops);
  }

  /// The domain binding of a Mutex, Event, Semaphore, FutexCounter or Condition.
  template <class Primitive>
  static const DomainBinding& binding(const Primitive& p) noexcept {
    return p.binding_;
  }
};

}  // namespace weft::detail
