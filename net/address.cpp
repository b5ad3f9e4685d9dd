// net/address.cpp — (being written)
