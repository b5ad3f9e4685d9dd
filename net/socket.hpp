// weft/net/socket.hpp — (being written)
#pragma once
