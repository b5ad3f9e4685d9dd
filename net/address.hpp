// weft/net/address.hpp — (being written)
#pragma once
