// weft/net/recv_buffer.hpp — the former header of net::ReadBuffer, kept so that
// code including it builds: it includes net/read_buffer.hpp, which declares
// ReadBuffer and RecvBuffer, its deprecated alias. Nothing else lives here.
#pragma once

#include <weft/net/read_buffer.hpp>
