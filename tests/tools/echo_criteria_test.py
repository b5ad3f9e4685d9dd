#!/usr/bin/env python3
"""tools/bench-lab/echo-criteria on fixed medians: what passes, what fails and why, and a
file that lacks a server. Usage: echo_criteria_test.py PATH-TO-echo-criteria"""
import subprocess
import sys

TOOL = sys.argv[1]
PEERS = ("weft", "uring", "uring-simple", "epoll", "asio", "go-1", "go-2")


def medians(us_by_point):
    """bench_echo.sh-style lines: {(size, conns): (weft, uring, uring-simple, epoll, asio, go-1, go-2)}."""
    lines = []
    for (size, conns), values in us_by_point.items():
        for peer, us in zip(PEERS, values):
            lines.append(f"peer={peer} bench=echo size={size} conns={conns} rps=1 server_us_per_req={us} errors=0")
    return "\n".join(lines) + "\n"


def run(text, *args):
    p = subprocess.run([sys.executable, TOOL, *args], input=text, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


good = (5.0, 5.0, 5.2, 5.5, 5.6, 6.0, 6.1)
points = {(s, c): good for s in ("64", "4096") for c in ("64", "512")}
points[("64", "1")] = (99.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)  # one connection: not judged

rc, out, err = run(medians(points))
check(rc == 0, f"all met: exit 0, got {rc} ({err.strip()})")
check("16/16 criteria met" in out, f"all met: '16/16 criteria met' in {out!r}")
check(out.count("failed=[]") == 4, f"all met: four points with nothing failed in {out!r}")

# 64 B / 512: 1.11x the better raw server (5.0) and level with epoll: two failures.
bad = dict(points)
bad[("64", "512")] = (5.55, 5.0, 5.2, 5.55, 5.6, 6.0, 6.1)
# 4096 B / 64: above one of the two Go servers only.
bad[("4096", "64")] = (5.0, 5.0, 5.2, 5.5, 5.6, 6.0, 4.9)
rc, out, _ = run(medians(bad))
check(rc == 1, f"some failed: exit 1, got {rc}")
check("13/16 criteria met" in out, f"some failed: '13/16 criteria met' in {out!r}")
check("size=64 conns=512 weft=5.55 best_uring=5.0 ratio=1.110" in out and "failed=['1.1x', 'epoll']" in out,
      f"64/512 fails 1.1x and epoll in {out!r}")
check("size=4096 conns=64" in out and "failed=['go']" in out, f"4096/64 fails go in {out!r}")

# --subject judges another server in weft's slot.
rc, out, _ = run(medians(points), "--subject", "uring")
check(rc == 0 and "uring=5.0" in out, f"--subject uring: exit 0 and its figure, got {rc} {out!r}")

# A missing server or point is an error, not a pass.
text = "\n".join(l for l in medians(points).splitlines() if not ("peer=epoll" in l and "size=4096 conns=512" in l))
rc, _, err = run(text + "\n")
check(rc == 2 and "no line for epoll at size=4096 conns=512" in err, f"missing epoll: exit 2, got {rc} {err!r}")
rc, _, err = run("")
check(rc == 2, f"empty input: exit 2, got {rc}")

for f in failures:
    print("FAILED:", f)
print(f"{'FAIL' if failures else 'PASS'}: echo-criteria, {len(failures)} failure(s)")
sys.exit(1 if failures else 0)
