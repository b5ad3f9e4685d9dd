// net/tcp_stream.cpp — (being written)
