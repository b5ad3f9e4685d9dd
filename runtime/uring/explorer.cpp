// runtime/uring/explorer.cpp — the explorer's decisions (see explorer.hpp).
#include <cerrno>

#include <weft/runtime/uring/explorer.hpp>

namespace weft::detail {

void Explorer::init(const Explore& cfg, unsigned worker_index) noexcept {
  cfg_ = cfg;
  on_ = cfg.seed != 0;
  // splitmix64 of (seed, worker): distinct, well-mixed streams per worker.
  std::uint64_t z = cfg.seed + 0x9e3779b97f4a7c15ULL * (worker_index + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  state_ = (z ^ (z >> 31)) | 1;
}

std::uint64_t Explorer::next() noexcept {
  state_ ^= state_ >> 12;
  state_ ^= state_ << 25;
  state_ ^= state_ >> 27;
  return state_ * 2685821657736338717ULL;
}

std::uint32_t Explorer::shorten(OpKind kind, std::uint32_t len) noexcept {
  if ((kind != OpKind::stream_io && kind != OpKind::file_io) || len < 2 || !fault(Explore::short_transfer, cfg_.faults))
    return len;
  return 1 + static_cast<std::uint32_t>(next() % (len - 1));
}

int Explorer::fail_op(OpKind kind, bool has_deadline) noexcept {
  if (kind == OpKind::other || !fault(Explore::fail_op, cfg_.faults)) return 0;
  const std::uint64_t r = next();
  switch (kind) {
    case OpKind::stream_io: {
      // A reset peer, a would-block the caller retries through poll, an
      // interrupted op, no buffer space, or (with a deadline) the deadline.
      static constexpr int kErrs[] = {-ECONNRESET, -EAGAIN, -EINTR, -ENOBUFS, -ECANCELED};
      return kErrs[r % (has_deadline ? 5 : 4)];
    }
    case OpKind::dgram_io: {
      static constexpr int kErrs[] = {-EAGAIN, -EINTR, -ENOBUFS, -ECANCELED};
      return kErrs[r % (has_deadline ? 4 : 3)];
    }
    case OpKind::accept: {
      static constexpr int kErrs[] = {-ECONNABORTED, -EAGAIN, -EINTR, -EMFILE};
      return kErrs[r % 4];
    }
    case OpKind::connect: {
      static constexpr int kErrs[] = {-ECONNREFUSED, -EINTR, -ECANCELED};
      return kErrs[r % (has_deadline ? 3 : 2)];
    }
    case OpKind::file_io: {
      // An interrupted read or write (retried by fs/), or (with a deadline) the deadline.
      static constexpr int kErrs[] = {-EINTR, -ECANCELED};
      return kErrs[r % (has_deadline ? 2 : 1)];
    }
    case OpKind::other:
      break;
  }
  return 0;
}

unsigned Explorer::hold_cqe() noexcept {
  if (!fault(Explore::hold_cqe, cfg_.faults)) return 0;
  return 1 + static_cast<unsigned>(next() % 4);
}

}  // namespace weft::detail
