// weft/net/tcp_listener.hpp — (being written)
#pragma once
