// runtime/uring/buf_ring.cpp — the provided-buffer ring; see buf_ring.hpp for the
// invariants.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <new>

#include <weft/runtime/uring/buf_ring.hpp>

namespace weft::detail {

BufRing* BufRing::create(io_uring* ring, const void* owner, unsigned count, unsigned size, int* err) {
  *err = 0;
  auto* r = new (std::nothrow) BufRing;
  if (!r) {
    *err = -ENOMEM;
    return nullptr;
  }
  r->owner_ = owner;
  r->count_ = count;
  r->size_ = size;
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  r->ring_bytes_ = (sizeof(io_uring_buf) * count + page - 1) / page * page;
  void* ring_mem = ::mmap(nullptr, r->ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  void* bufs = ::mmap(nullptr, static_cast<std::size_t>(count) * size, PROT_READ | PROT_WRITE,
                      MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  r->links_ = new (std::nothrow) Link[count];
  if (ring_mem == MAP_FAILED || bufs == MAP_FAILED || !r->links_) {
    if (ring_mem != MAP_FAILED) ::munmap(ring_mem, r->ring_bytes_);
    if (bufs != MAP_FAILED) ::munmap(bufs, static_cast<std::size_t>(count) * size);
    delete r;
    *err = -ENOMEM;
    return nullptr;
  }
  r->br_ = static_cast<io_uring_buf_ring*>(ring_mem);
  r->base_ = static_cast<char*>(bufs);
  io_uring_buf_ring_init(r->br_);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uint64_t>(ring_mem);
  reg.ring_entries = count;
  reg.bgid = kGroup;
  const int rc = io_uring_register_buf_ring(ring, &reg, 0);
  if (rc != 0) {
    *err = rc;
    r->retired_.store(true, std::memory_order_relaxed);  // never registered: nothing to unregister
    delete r;
    return nullptr;
  }
  for (unsigned i = 0; i < count; ++i) r->give_back(static_cast<std::uint16_t>(i));
  return r;
}

BufRing::~BufRing() {
  if (br_) ::munmap(br_, ring_bytes_);
  if (base_) ::munmap(base_, static_cast<std::size_t>(count_) * size_);
  delete[] links_;
}

void BufRing::give_back(std::uint16_t bid) noexcept {
  io_uring_buf_ring_add(br_, data(bid), size_, bid, io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(br_, 1);  // release store of the tail (liburing)
}

void BufRing::put(std::uint16_t bid, bool on_owner_thread) noexcept {
  if (retired_.load(std::memory_order_acquire)) return;
  if (on_owner_thread) {
    give_back(bid);
    return;
  }
  // The lease owned the link; the release CAS publishes it to drain_remote().
  std::uint32_t head = remote_head_.load(std::memory_order_relaxed);
  do {
    links_[bid].next = head == 0 ? kNone : static_cast<std::uint16_t>(head - 1);
  } while (!remote_head_.compare_exchange_weak(head, std::uint32_t{bid} + 1, std::memory_order_release,
                                               std::memory_order_relaxed));
}

void BufRing::drain_remote() noexcept {
  std::uint32_t top = remote_head_.exchange(0, std::memory_order_acquire);
  for (std::uint16_t bid = top == 0 ? kNone : static_cast<std::uint16_t>(top - 1); bid != kNone;) {
    const std::uint16_t next = links_[bid].next;
    give_back(bid);
    bid = next;
  }
}

void BufRing::retire(io_uring* ring) noexcept {
  drain_remote();
  retired_.store(true, std::memory_order_release);
  (void)io_uring_unregister_buf_ring(ring, kGroup);
  release();
}

void BufRing::release() noexcept {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

}  // namespace weft::detail
