// net/udp.cpp — (being written)
