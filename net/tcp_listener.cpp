// net/tcp_listener.cpp — (being written)
