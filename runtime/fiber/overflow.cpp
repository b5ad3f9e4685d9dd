// runtime/fiber/overflow.cpp — the SIGSEGV/SIGBUS handler that names an overflowing fiber.
//
// Invariants (beyond the header's):
//  - g_prev_segv/g_prev_bus are written once, inside the call_once, before our handler
//    is installed for that signal; afterwards the handler only reads them.
//  - Everything reachable from on_fault() is async-signal-safe: no allocation, no
//    locks, no stdio; only the probe, sigaction(2), write(2) and raise(3).
//  - The handler never keeps a fault for itself: it restores the previous disposition
//    and returns, so the faulting instruction re-executes under that disposition.
//  - t_alt describes the altstack this thread installed (none when map == nullptr);
//    release restores the one that was there before (ASan's, say), so whoever set
//    that one up can still free it at thread exit.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>

#include <weft/runtime/error.hpp>
#include <weft/runtime/fiber/overflow.hpp>
#include <weft/runtime/fiber/stack_pool.hpp>

namespace weft::detail {
namespace {

// Stored by install_overflow_handler() on one thread while a fault handler may read it
// on any other: an atomic, lock-free (so readable from a signal handler) pointer.
// release/acquire: whatever the caller set up before installing the probe is visible
// to a handler that sees the new pointer.
std::atomic<OverflowProbeFn> g_probe{nullptr};
static_assert(std::atomic<OverflowProbeFn>::is_always_lock_free);

struct sigaction g_prev_segv {};
struct sigaction g_prev_bus {};
std::once_flag g_install_once;

constexpr std::size_t kMinAltStack = 64 * 1024;

struct AltStack {
  void* map = nullptr;  ///< the whole mapping: one guard page, then the stack
  std::size_t map_bytes = 0;
  stack_t prev{};  ///< the altstack this thread had before ours
};
thread_local AltStack t_alt;

// ---- async-signal-safe formatting ----

class Line {
 public:
  void put(const char* s, std::size_t max = 64) {
    for (std::size_t i = 0; s[i] != '\0' && i < max; ++i) put_char(s[i]);
  }
  void put_u64(std::uint64_t v) {
    char digits[20];
    std::size_t n = 0;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n != 0) put_char(digits[--n]);
  }
  void put_i64(std::int64_t v) {
    if (v < 0) {
      put_char('-');
      put_u64(0 - static_cast<std::uint64_t>(v));
    } else {
      put_u64(static_cast<std::uint64_t>(v));
    }
  }
  void write_to(int fd) const {
    std::size_t done = 0;
    while (done < len_) {
      const ssize_t n = ::write(fd, buf_ + done, len_ - done);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
      } else if (n < 0 && errno != EINTR) {
        return;  // stderr closed or full: nothing more we can do
      }
    }
  }

 private:
  void put_char(char c) {
    if (len_ < sizeof(buf_)) buf_[len_++] = c;
  }
  char buf_[256];
  std::size_t len_ = 0;
};

bool fault_in_guard(const OverflowProbe& p, const void* addr) {
  if (p.guard_lo == nullptr || p.guard_size == 0) return false;
  const auto a = reinterpret_cast<std::uintptr_t>(addr);
  const auto lo = reinterpret_cast<std::uintptr_t>(p.guard_lo);
  // The guard, plus anything up to the usable stack (the same range in our layout).
  const auto hi = std::max(lo + p.guard_size, reinterpret_cast<std::uintptr_t>(p.stack_lo));
  return a >= lo && a < hi;
}

void report_overflow(const OverflowProbe& p) {
  Line line;
  line.put(kFatalPrefix);
  line.put("fiber stack overflow (fault in guard page) in fiber ");
  if (p.fiber_name != nullptr && p.fiber_name[0] != '\0') {
    line.put(p.fiber_name);
  } else {
    line.put("fiber#");  // the name FiberBase::display_name() gives an unnamed fiber
    line.put_u64(p.fiber_id);
  }
  line.put(" (id ");
  line.put_u64(p.fiber_id);
  line.put(", worker ");
  line.put_i64(p.worker);
  line.put(")\n");
  line.write_to(STDERR_FILENO);
}

void on_fault(int sig, siginfo_t* info, void* /*ucontext*/) {
  const int saved_errno = errno;
  // si_code > 0: raised by the kernel for a fault, so si_addr is the faulting address.
  const bool from_fault = info != nullptr && info->si_code > 0;
  if (from_fault) {
    OverflowProbe p;
    const OverflowProbeFn probe = g_probe.load(std::memory_order_acquire);
    if (probe != nullptr && probe(&p) && fault_in_guard(p, info->si_addr)) report_overflow(p);
  }
  // Hand the fault back: with the previous disposition restored, returning re-executes
  // the faulting instruction, which faults again and is handled as if we never were
  // (default: the process dies by this signal, with a core dump if enabled).
  ::sigaction(sig, sig == SIGBUS ? &g_prev_bus : &g_prev_segv, nullptr);
  // A sent signal (kill, raise) does not recur by itself: send it again. It stays
  // blocked until we return, then meets the restored disposition.
  if (!from_fault) ::raise(sig);
  errno = saved_errno;
}

void install_once() {
  // Read the previous dispositions before installing ours, so a fault on another
  // thread never finds ours installed with the previous one not yet saved.
  if (::sigaction(SIGSEGV, nullptr, &g_prev_segv) != 0 || ::sigaction(SIGBUS, nullptr, &g_prev_bus) != 0) {
    throw_errno(-errno, "weft: reading the SIGSEGV/SIGBUS dispositions failed");
  }
  struct sigaction sa {};
  sa.sa_sigaction = &on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;  // the overflowed fiber stack has no room left
  sigemptyset(&sa.sa_mask);
  if (::sigaction(SIGSEGV, &sa, nullptr) != 0) {
    throw_errno(-errno, "weft: installing the fiber stack overflow handler (SIGSEGV) failed");
  }
  if (::sigaction(SIGBUS, &sa, nullptr) != 0) {
    const int err = errno;
    ::sigaction(SIGSEGV, &g_prev_segv, nullptr);
    throw_errno(-err, "weft: installing the fiber stack overflow handler (SIGBUS) failed");
  }
}

}  // namespace

void install_overflow_handler(OverflowProbeFn probe) {
  g_probe.store(probe, std::memory_order_release);
  std::call_once(g_install_once, install_once);  // an exception leaves it to a retry
}

void setup_thread_altstack() {
  if (t_alt.map != nullptr) return;
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const long sigstksz = ::sysconf(_SC_SIGSTKSZ);
  std::size_t size = std::max(4 * static_cast<std::size_t>(sigstksz > 0 ? sigstksz : 0), kMinAltStack);
  size = (size + page - 1) / page * page;
  const std::size_t bytes = size + page;
  void* map = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (map == MAP_FAILED) throw_errno(-errno, "weft: mmap of the signal alternate stack failed");
  // A guard page below, so a handler that overflows the altstack faults instead of
  // scribbling over a neighbour. Best effort: without it the altstack still works.
  if (!(kernel_has_guard_install() && ::madvise(map, page, 102 /*MADV_GUARD_INSTALL*/) == 0)) {
    ::mprotect(map, page, PROT_NONE);
  }
  stack_t ss{};
  ss.ss_sp = static_cast<char*>(map) + page;
  ss.ss_size = size;
  ss.ss_flags = 0;
  stack_t prev{};
  if (::sigaltstack(&ss, &prev) != 0) {
    const int err = errno;
    ::munmap(map, bytes);
    throw_errno(-err, "weft: sigaltstack for the fiber overflow handler failed");
  }
  t_alt.map = map;
  t_alt.map_bytes = bytes;
  t_alt.prev = prev;
}

void release_thread_altstack() noexcept {
  if (t_alt.map == nullptr) return;
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  stack_t cur{};
  ::sigaltstack(nullptr, &cur);
  const bool ours = (cur.ss_flags & SS_DISABLE) == 0 && cur.ss_sp == static_cast<char*>(t_alt.map) + page;
  if (ours) {
    if ((cur.ss_flags & SS_ONSTACK) != 0) return;  // running on it (inside a handler): keep it
    stack_t restore = t_alt.prev;
    restore.ss_flags &= ~SS_ONSTACK;
    if ((restore.ss_flags & SS_DISABLE) != 0 || restore.ss_sp == nullptr || ::sigaltstack(&restore, nullptr) != 0) {
      stack_t off{};
      off.ss_flags = SS_DISABLE;
      ::sigaltstack(&off, nullptr);
    }
  }
  // Ours is no longer installed (or someone replaced it): nothing can run on it now.
  ::munmap(t_alt.map, t_alt.map_bytes);
  t_alt = AltStack{};
}

}  // namespace weft::detail
