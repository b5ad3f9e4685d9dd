// net/resolve.cpp — (being written)
