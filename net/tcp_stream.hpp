// weft/net/tcp_stream.hpp — (being written)
#pragma once
