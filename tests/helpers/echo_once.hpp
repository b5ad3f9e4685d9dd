// tests/helpers/echo_once.hpp — the smallest server a startup test can run: one
// TCP echo of "ping" over loopback, a listener fiber and a client in the calling
// fiber. Returns what came back ("ping" when the engine serves sockets).
#pragma once

#include <string>

#include <weft/weft.hpp>

namespace weft::test {

/// Fiber context: echoes "ping" once through a loopback listener; what came back.
inline std::string echo_once() {
  auto listener = weft::net::TcpListener::bind(weft::net::Address::ipv4_loopback(0));
  auto server = weft::spawn([&] {
    weft::net::TcpStream s = listener.accept();
    char buf[4];
    s.read_exact(buf, sizeof buf);
    s.write_all(buf, sizeof buf);
  });
  auto client = weft::net::TcpStream::connect(listener.local_address());
  client.write_all("ping");
  char got[4];
  client.read_exact(got, sizeof got);
  server.join();
  return std::string(got, sizeof got);
}

}  // namespace weft::test
