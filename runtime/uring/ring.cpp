// runtime/uring/ring.cpp — ring setup (flag probing, startup errors) and the enter.
#include <sys/resource.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include <weft/runtime/error.hpp>
#include <weft/runtime/uring/explorer.hpp>
#include <weft/runtime/uring/ring.hpp>

namespace weft::detail {

namespace {

std::string read_first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  if (in) std::getline(in, line);
  return line;
}

std::string seccomp_mode() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Seccomp:", 0) == 0) return line.substr(line.find_first_not_of(" \t", 8));
  return "";
}

void probe_ops(io_uring* ring, RingInfo* info) {
  io_uring_probe* p = io_uring_get_probe_ring(ring);
  if (!p) return;
  info->last_op = p->last_op;
  for (int i = 0; i < p->ops_len && i < 256; ++i)
    if (p->ops[i].flags & IO_URING_OP_SUPPORTED) info->op_bits[i / 64] |= 1ULL << (i % 64);
  io_uring_free_probe(p);
}

std::string kernel_release() {
  utsname u{};
  return ::uname(&u) == 0 ? std::string(u.release) : std::string("unknown");
}

// The opcodes every worker issues whatever the program does (the wake read,
// socket ops, deadlines, cancels). A ring without one of them cannot run weft.
struct NeededOp {
  int op;
  const char* name;
};
constexpr NeededOp kNeededOps[] = {
    {IORING_OP_READ, "READ"},
    {IORING_OP_RECV, "RECV"},
    {IORING_OP_SEND, "SEND"},
    {IORING_OP_ACCEPT, "ACCEPT"},
    {IORING_OP_CONNECT, "CONNECT"},
    {IORING_OP_POLL_ADD, "POLL_ADD"},
    {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
    {IORING_OP_LINK_TIMEOUT, "LINK_TIMEOUT"},
};

}  // namespace

std::string explain_setup_failure(int err, unsigned entries) {
  std::string msg = "weft: cannot start: io_uring_setup failed (" + std::string(std::strerror(err)) + ", Linux " +
                    kernel_release() + "). ";
  switch (err) {
    case ENOSYS:
      return msg +
             "Cause: this kernel has no io_uring, or a seccomp filter answers ENOSYS for it. "
             "Remedy: run on Linux >= 6.1 built with CONFIG_IO_URING, and allow the "
             "io_uring_setup/io_uring_enter/io_uring_register syscalls in the seccomp profile.";
    case EPERM: {
      std::string disabled = read_first_line("/proc/sys/kernel/io_uring_disabled");
      std::string seccomp = seccomp_mode();
      if (!disabled.empty() && disabled != "0")
        return msg + "Cause: kernel.io_uring_disabled=" + disabled +
               " (io_uring is disabled for this process by sysctl). Remedy: sysctl -w "
               "kernel.io_uring_disabled=0, or =1 and add this user to kernel.io_uring_group.";
      if (seccomp == "2")
        return msg +
               "Cause: the process runs under a seccomp filter (Seccomp: 2) that refuses "
               "io_uring_setup; container runtimes do this by default (Docker >= 25, containerd 2.0). "
               "Remedy: run with a seccomp profile that allows io_uring_setup, io_uring_enter and "
               "io_uring_register (e.g. docker run --security-opt seccomp=<profile>).";
      return msg + "Cause: not permitted (an LSM or seccomp policy). Remedy: allow io_uring for this process.";
    }
    case ENOMEM: {
      rlimit rl{};
      getrlimit(RLIMIT_MEMLOCK, &rl);
      return msg + "Cause: the ring memory (" + std::to_string(entries) +
             " entries) is charged to RLIMIT_MEMLOCK, which is " +
             (rl.rlim_cur == RLIM_INFINITY ? std::string("unlimited") : std::to_string(rl.rlim_cur) + " bytes") +
             ". Remedy: raise it (ulimit -l, LimitMEMLOCK= in systemd, --ulimit memlock= in "
             "docker), grant CAP_IPC_LOCK, or lower Config::ring_entries.";
    }
    case EMFILE:
    case ENFILE:
      return msg + "Cause: out of file descriptors. Remedy: raise RLIMIT_NOFILE (ulimit -n).";
    default:
      return msg + "Remedy: check the kernel's io_uring support and this process's limits.";
  }
}

Ring::~Ring() {
  if (ready_) io_uring_queue_exit(&ring_);
}

void Ring::init(unsigned entries, bool want_defer_taskrun) {
  const unsigned base = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
  const unsigned attempts[] = {
      want_defer_taskrun ? base | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN : base,
      base | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
      base,
      IORING_SETUP_CQSIZE,
  };
  int err = EINVAL;
  for (unsigned flags : attempts) {
    unsigned n = entries;
    for (;;) {
      io_uring_params p{};
      p.flags = flags;
      // Above 16384 entries 4x is more than the kernel takes: cap it (still 2x).
      p.cq_entries = std::min(n * 4, kMaxCqEntries);
      int r = io_uring_queue_init_params(n, &ring_, &p);
      if (r == 0) {
        info_.entries = n;
        info_.setup_flags = flags;
        info_.defer_taskrun = (flags & IORING_SETUP_DEFER_TASKRUN) != 0;
        info_.ext_arg = (p.features & IORING_FEAT_EXT_ARG) != 0;
        info_.nodrop = (p.features & IORING_FEAT_NODROP) != 0;
        probe_ops(&ring_, &info_);
        for (const NeededOp& n : kNeededOps)
          if (info_.last_op >= 0 && !info_.has_op(n.op)) {
            io_uring_queue_exit(&ring_);
            throw StartupError(EOPNOTSUPP, "weft: cannot start: io_uring on Linux " + kernel_release() +
                                               " lacks IORING_OP_" + n.name +
                                               ", which weft needs. Remedy: run on Linux >= 6.1.");
          }
        // Registered ring fd (5.18): liburing then enters with
        // IORING_ENTER_REGISTERED_RING, sparing the fd lookup and the file
        // reference every io_uring_enter takes otherwise (an atomic pair, since the
        // runtime's threads share the fd table). Owner thread only, as here.
        // Refused (older kernel, or the table full): the plain fd still works.
        info_.registered_fd = io_uring_register_ring_fd(&ring_) == 1;
        ready_ = true;
        return;
      }
      err = -r;
      if (err == ENOMEM && n > 8) {  // memlock: a smaller ring may still fit
        n /= 2;
        continue;
      }
      break;
    }
    if (err != EINVAL) break;  // only "flags too new" moves on to the next set
  }
  throw StartupError(err, explain_setup_failure(err, entries));
}

bool Ring::reserve(unsigned n) noexcept {
  const bool explore = explorer_ && explorer_->on();
  if (io_uring_sq_space_left(&ring_) >= n) [[likely]] {
    if (!explore || !explorer_->sq_full()) return true;
    sq_full.add();
    return false;  // injected: the callers' no-room paths run
  }
  sq_full.add();
  for (;;) {
    enters.add();
    // A flush without waiting: with DEFER_TASKRUN it also runs pending task work,
    // so completions queued by the kernel show up for the tick's reap.
    int r = explore ? explorer_->refuse_submit() : 0;
    if (r == 0) r = io_uring_submit_and_get_events(&ring_);
    if (r > 0) submitted.add(static_cast<unsigned>(r));
    if (r != -EINTR) break;
  }
  // -EBUSY/-EAGAIN (CQ backlog on older kernels, or no memory for the requests):
  // completions must be reaped first; the caller goes through the tick.
  return io_uring_sq_space_left(&ring_) >= n;
}

int Ring::enter(bool wait, std::int64_t timeout_ns) {
  if (explorer_ && explorer_->on())
    if (const int r = explorer_->refuse_submit()) return r;  // as the kernel's -EBUSY: reap first
  const unsigned to_submit = io_uring_sq_ready(&ring_);
  for (;;) {
    int r;
    enters.add();
    if (!wait) {
      r = io_uring_submit_and_get_events(&ring_);
    } else if (timeout_ns < 0) {
      r = io_uring_submit_and_wait(&ring_, 1);
    } else {
      __kernel_timespec ts{};
      ts.tv_sec = timeout_ns / 1'000'000'000;
      ts.tv_nsec = timeout_ns % 1'000'000'000;
      io_uring_cqe* cqe = nullptr;
      r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      if (r == -ETIME) r = static_cast<int>(to_submit);  // timer due: not an error
    }
    if (r == -EINTR) continue;  // a signal arrived; nothing was lost
    if (r >= 0) submitted.add(to_submit);
    return r;
  }
}

bool Ring::cq_overflowed() const {
  return (IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_CQ_OVERFLOW) != 0;
}

}  // namespace weft::detail
