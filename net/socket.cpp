// net/socket.cpp — (being written)
