// runtime/error.cpp — conversion of raw -errno results into exceptions (one place).
#include <weft/runtime/error.hpp>

namespace weft {

void throw_errno(int res, const char* what) {
  throw std::system_error(errno_code(res), what);
}

}  // namespace weft
