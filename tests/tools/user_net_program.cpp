// A first server as a user writes it from <weft/weft.hpp> alone, built against an
// installed weft (tests/tools/installed_link_test.py) and as a meson subproject's
// user (tests/tools/subproject_test.py): a fiber echoes one connection on
// loopback, the main fiber connects, sends "ping" and reads it back.
// Exits 0 when the echo came back, 1 otherwise, 77 when the kernel refuses io_uring.
#include <cstdio>
#include <string>

#include <weft/weft.hpp>

int main() {
  using namespace std::chrono_literals;
  try {
    weft::Runtime rt;
    const std::string back = rt.block_on([] {
      auto listener = weft::net::TcpListener::bind(weft::net::Address::ipv4_loopback(0));
      auto server = weft::spawn([&] {
        weft::net::TcpStream s = listener.accept(10s);
        char buf[64];
        for (std::size_t n; (n = s.read_some(buf, sizeof buf, 10s)) != 0;) s.write_all(buf, n, 10s);
      });
      auto c = weft::net::TcpStream::connect(listener.local_address(), 10s);
      c.write_all("ping", 4, 10s);
      c.shutdown(weft::net::Shutdown::write);
      std::string got;
      char buf[64];
      for (std::size_t n; (n = c.read_some(buf, sizeof buf, 10s)) != 0;) got.append(buf, n);
      server.join();
      return got;
    });
    std::printf("echoed: %s\n", back.c_str());
    return back == "ping" ? 0 : 1;
  } catch (const weft::StartupError& e) {
    std::fprintf(stderr, "SKIP: %s\n", e.what());
    return 77;
  }
}
