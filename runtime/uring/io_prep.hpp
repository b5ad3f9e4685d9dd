// weft/runtime/uring/io_prep.hpp — how the io_uring engine issues an IoOp
// (runtime/io_op.hpp): the SQE it becomes, and which kinds this ring can run.
// The invariants are at the top of io_prep.cpp.
#pragma once

#include <weft/runtime/io_op.hpp>

struct io_uring_sqe;

namespace weft::detail {

struct RingInfo;

/// Fills `sqe` for `op` (not its user_data, link flag or linked timeout).
void prep_io(io_uring_sqe* sqe, const IoOp& op, const RingInfo& info) noexcept;
/// Under valgrind: marks what the kernel wrote for `op`, which ended with `res`,
/// as defined (memcheck does not see io_uring's writes). Nothing otherwise.
void mark_filled(const IoOp& op, int res) noexcept;
/// Whether a ring with this probe runs `k` (BIND and LISTEN need Linux 6.11).
bool uring_supports(const RingInfo& info, IoKind k) noexcept;

}  // namespace weft::detail
