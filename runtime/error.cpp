// runtime/error.cpp — the out-of-line parts of weft's exception types, and the
// conversion of raw -errno results into exceptions (one place).
#include <weft/runtime/error.hpp>

namespace weft {

void throw_errno(int res, const char* what) {
  throw std::system_error(errno_code(res), what);
}

namespace net {

UnexpectedEof::UnexpectedEof(const std::string& what, std::size_t got, std::size_t wanted)
    : std::system_error(std::make_error_code(std::errc::no_message_available),
                        what + ": the peer ended the stream after " + std::to_string(got) + " of " +
                            std::to_string(wanted) + " bytes"),
      got_(got),
      wanted_(wanted) {}

}  // namespace net
}  // namespace weft
