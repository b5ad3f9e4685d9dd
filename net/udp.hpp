// weft/net/udp.hpp — (being written)
#pragma once
