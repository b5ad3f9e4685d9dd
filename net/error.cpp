// net/error.cpp — (being written)
