// weft/net/error.hpp — (being written)
#pragma once
