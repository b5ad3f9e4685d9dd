#!/usr/bin/env python3
"""weft as a meson subproject, as a parent project takes it: a parent generated in
the build directory, with this source tree linked as its subprojects/weft and
dependency('weft', fallback : ['weft', 'weft_dep']), is configured and built.

Proves: the parent's build defines no weft test or tool target (the tests and
tools are off by default in a subproject), and its `meson test` lists no test;
the parent's program (tests/tools/user_net_program.cpp) builds and runs. weft is
built there with -Dweft:default_library=shared, so this also proves that the
shared libweft builds (PIC objects), carries a versioned soname and works.

Usage: subproject_test.py BUILD_DIR SOURCE_DIR MESON CXX...
Exit status: 0 passed, 1 failed, 77 skipped (no meson, no io_uring).
"""
import os
import re
import shlex
import shutil
import subprocess
import sys

BUILD, SOURCE, MESON = sys.argv[1:4]
CXX = sys.argv[4:]
PROGRAM = os.path.join(SOURCE, "tests", "tools", "user_net_program.cpp")

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)
    return cond


def run(cmd, env=None, cwd=None, timeout=600):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def main():
    if not MESON or not shutil.which("ninja"):
        print("SKIP: meson or ninja not found")
        sys.exit(77)
    parent = os.path.join(BUILD, "subproject-user")
    shutil.rmtree(parent, ignore_errors=True)
    os.makedirs(os.path.join(parent, "subprojects"))
    os.symlink(SOURCE, os.path.join(parent, "subprojects", "weft"))
    shutil.copy(PROGRAM, os.path.join(parent, "app.cpp"))
    with open(os.path.join(parent, "meson.build"), "w", encoding="utf-8") as f:
        f.write("project('app', 'cpp', default_options : ['cpp_std=c++20'])\n"
                "weft_dep = dependency('weft', fallback : ['weft', 'weft_dep'])\n"
                "executable('app', 'app.cpp', dependencies : weft_dep)\n")
    env = dict(os.environ, CXX=" ".join(shlex.quote(c) for c in CXX))
    b = os.path.join(parent, "b")
    rc, out = run([MESON, "setup", b, "-Dweft:default_library=shared"], env=env, cwd=parent)
    if rc != 0:
        print(out)
        sys.exit("configuring a parent project with weft as its subproject failed")

    rc, out = run(["ninja", "-C", b, "-t", "targets", "all"])
    targets = [ln.split(":")[0] for ln in out.splitlines() if ":" in ln]
    weft_targets = [t for t in targets if t.startswith("subprojects/weft/")]
    check(any(re.search(r"/libweft\.so", t) for t in weft_targets), "the parent's build has libweft.so")
    unasked = sorted({t for t in weft_targets if re.match(r"subprojects/weft/(tests|tools)/", t)})
    check(not unasked, "the parent's build defines no weft test or tool target"
          + (": " + " ".join(unasked[:10]) if unasked else ""))
    rc, out = run([MESON, "test", "-C", b, "--list", "--no-rebuild"])  # exit 1 and "No tests defined." when none
    listed = [ln for ln in out.splitlines() if ln.strip() and not ln.startswith(("ninja", "No tests defined"))]
    check(not listed, "the parent's meson test lists no test" + (": " + " ".join(listed[:5]) if listed else ""))

    rc, out = run(["ninja", "-C", b])
    if not check(rc == 0, "the parent's ninja builds"):
        print(out[-4000:])
    else:
        built = [os.path.relpath(os.path.join(r, f), b) for r, _, fs in os.walk(os.path.join(b, "subprojects", "weft"))
                 for f in fs]
        check(not [p for p in built if re.match(r"subprojects/weft/(tests|tools)/", p)],
              "nothing under weft's tests/ or tools/ was built")
        rc, out = run(["readelf", "-dW", os.path.join(b, "app")])
        m = re.search(r"\(NEEDED\)\s+Shared library: \[(libweft\.so[^\]]*)\]", out)
        check(bool(m) and re.fullmatch(r"libweft\.so\.\d+(\.\d+)*", m.group(1)) is not None,
              f"the program needs the shared libweft by its versioned soname ({m.group(1) if m else 'none'})")
        rc, out = run([os.path.join(b, "app")], timeout=120)
        if rc == 77:
            print(f"SKIP: {out.strip()}")
            sys.exit(77)
        check(rc == 0, f"the parent's program runs (exit {rc})")
        if rc != 0:
            print(out)

    if failures:
        print(f"{len(failures)} check(s) failed; the parent project is kept in {parent}")
        sys.exit(1)
    shutil.rmtree(parent, ignore_errors=True)


main()
