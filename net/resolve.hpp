// weft/net/resolve.hpp — (being written)
#pragma once
