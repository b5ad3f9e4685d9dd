#!/usr/bin/env python3
"""Runs examples/hello (the README's example) and checks what it prints: the sum
of the ten fibers' squares, 285, then the message of the CrossRuntimeError that
main's own weft::sleep_for gets (it names the call and says it is Evented-only).

    hello_output_test.py PATH-TO-hello

Exit 0 when both lines are right, 1 otherwise, 77 (skip) when the runtime cannot
start here (io_uring unavailable: the example ends on an uncaught StartupError).
"""
import subprocess
import sys

p = subprocess.run([sys.argv[1]], capture_output=True, text=True, timeout=60)
if p.returncode != 0 and "StartupError" in p.stderr:
    print("SKIP: the runtime cannot start here:", p.stderr.strip().splitlines()[-1])
    sys.exit(77)
lines = p.stdout.splitlines()
failures = []
if p.returncode != 0:
    failures.append(f"exit status {p.returncode}, stderr: {p.stderr.strip()!r}")
if len(lines) != 2:
    failures.append(f"two lines of output expected, got {len(lines)}: {p.stdout!r}")
if not lines or lines[0] != "285":
    failures.append(f"first line '285' expected, got {lines[:1]!r}")
if len(lines) < 2 or "sleep_for" not in lines[1] or "Evented-only" not in lines[1]:
    failures.append(f"second line: the CrossRuntimeError naming sleep_for as Evented-only, got {lines[1:2]!r}")
for f in failures:
    print("FAILED:", f)
print(f"{'FAIL' if failures else 'PASS'}: examples/hello, {len(failures)} failure(s)")
sys.exit(1 if failures else 0)
