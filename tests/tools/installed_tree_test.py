#!/usr/bin/env python3
"""The installed weft as its users see it: the build is installed into a DESTDIR
under the build directory and used through its .pc alone (PKG_CONFIG_PATH,
PKG_CONFIG_SYSROOT_DIR), as a program built against <prefix> would use it.

Checks (first argument):
  headers  <prefix>/include/weft holds exactly INSTALLED_HEADERS below, the public
           headers and the detail headers they include, so an internal header
           (runtime/uring/, net/socket_core.hpp, fs/file_core.hpp,
           runtime/test_access.hpp) cannot be
           installed by accident; and every weft header an installed one includes
           is installed too.
  link     tests/tools/user_program.cpp and user_net_program.cpp compile with the
           .pc's Cflags, link with its Libs and run, with g++ and with clang++, each
           with and without -flto (a compiler that is missing is left out; in a
           sanitizer build only the build's own compiler, whose sanitizer runtime
           libweft needs). Every member of the installed libweft.a that holds LTO
           bytecode holds regular code too, which any linker can use. Where a
           shared libweft is installed (-Ddefault_library=shared or both), its
           soname carries the version and the programs also link against it and run.

Usage: installed_tree_test.py CHECK BUILD_DIR SOURCE_DIR PC_NAME B_SANITIZE MESON CXX...
Exit status: 0 passed, 1 failed, 77 skipped (no pkg-config, no compiler, no io_uring).
"""
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys

CHECK, BUILD, SOURCE, PC_NAME, SANITIZE, MESON = sys.argv[1:7]
CXX = sys.argv[7:]

# Relative to <prefix>/include/weft. Adding a header here is a decision: it becomes
# part of what users may include (or of what the public headers need).
PUBLIC_HEADERS = [
    "weft.hpp",
    "fs/error.hpp", "fs/file.hpp", "fs/stat.hpp", "fs/whole_file.hpp",
    "net/address.hpp", "net/error.hpp", "net/read_buffer.hpp", "net/recv_buffer.hpp", "net/resolve.hpp",
    "net/socket.hpp",
    "net/tcp_listener.hpp", "net/tcp_stream.hpp", "net/udp.hpp",
    "runtime/config.hpp", "runtime/domain.hpp", "runtime/error.hpp", "runtime/log.hpp", "runtime/runtime.hpp",
    "runtime/stats.hpp", "runtime/this_fiber.hpp", "runtime/timer.hpp",
    "runtime/fiber/fiber.hpp",
    "runtime/threaded/offload.hpp", "runtime/threaded/thread_pool.hpp",
    "sync/channel.hpp", "sync/condition.hpp", "sync/event.hpp", "sync/futex_counter.hpp", "sync/mutex.hpp",
    "sync/semaphore.hpp",
]
# Included by the public ones for their templates and inline paths (the fiber
# switch, the Waiter and the park it inlines, the lock annotations, Timer's heap
# node, the domain binding).
DETAIL_HEADERS = [
    "runtime/time.hpp", "runtime/tsa.hpp", "runtime/waiter.hpp",
    "runtime/fiber/context.hpp", "runtime/fiber/park.hpp", "runtime/fiber/sanitizer.hpp",
    "runtime/fiber/stack_pool.hpp", "runtime/fiber/timer_node.hpp",
    "sync/binding.hpp", "sync/lock_word.hpp", "sync/owner.hpp", "sync/waiter_queue.hpp",
]
INSTALLED_HEADERS = set(PUBLIC_HEADERS + DETAIL_HEADERS)
PROGRAMS = ["user_program.cpp", "user_net_program.cpp"]

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)
    return cond


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(77)


def run(cmd, env=None, timeout=300):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def install(dest):
    """Installs the build into DESTDIR `dest` (emptied first); returns the install's paths."""
    if not MESON or not shutil.which("pkg-config"):
        skip("meson or pkg-config not found")
    shutil.rmtree(dest, ignore_errors=True)  # a file left by an earlier run must not count
    rc, out = run([MESON, "install", "-C", BUILD, "--no-rebuild", "--destdir", dest, "--quiet"])
    if rc != 0:
        print(out)
        sys.exit("meson install into the DESTDIR failed")
    pcs = glob.glob(os.path.join(dest, "**", PC_NAME + ".pc"), recursive=True)
    incs = glob.glob(os.path.join(dest, "**", "include", "weft"), recursive=True)
    if not pcs or not incs:
        sys.exit(f"{PC_NAME}.pc or include/weft was not installed under {dest}")
    env = dict(os.environ)
    env["PKG_CONFIG_PATH"] = os.pathsep.join([os.path.dirname(pcs[0])] + [p for p in [env.get("PKG_CONFIG_PATH")] if p])
    env["PKG_CONFIG_SYSROOT_DIR"] = dest  # the .pc names paths under the real prefix
    return env, incs[0], os.path.dirname(os.path.dirname(pcs[0]))  # .../lib/<triplet>/pkgconfig -> libdir


def check_headers(inc):
    found = set()
    for root, _, files in os.walk(inc):
        for f in files:
            found.add(os.path.relpath(os.path.join(root, f), inc))
    extra, missing = sorted(found - INSTALLED_HEADERS), sorted(INSTALLED_HEADERS - found)
    check(not extra, f"no header is installed beyond the list{': extra ' + ' '.join(extra) if extra else ''}")
    check(not missing, f"every listed header is installed{': missing ' + ' '.join(missing) if missing else ''}")
    print(f"note: {len(found)} headers installed ({len(PUBLIC_HEADERS)} public, {len(DETAIL_HEADERS)} detail)")
    dangling = []
    for h in sorted(found):
        with open(os.path.join(inc, h), encoding="utf-8") as f:
            for m in re.finditer(r"^\s*#\s*include\s*<weft/([^>]+)>", f.read(), re.M):
                if m.group(1) not in found:
                    dangling.append(f"{h} -> {m.group(1)}")
    check(not dangling, "every weft header an installed header includes is installed"
          + (": " + ", ".join(dangling) if dangling else ""))


def pkg_config(env, *what):
    rc, out = run(["pkg-config", *what, PC_NAME], env=env)
    if rc != 0:
        sys.exit(f"pkg-config {' '.join(what)} {PC_NAME} failed: {out}")
    return shlex.split(out)


def sections_by_member(archive):
    """{member: [(section name, size)]} from readelf -S of an archive."""
    rc, out = run(["readelf", "-SW", archive])
    if rc != 0:
        sys.exit(f"readelf -S {archive} failed: {out}")
    members, cur = {}, None
    for ln in out.splitlines():
        m = re.match(r"^File: .*\((.+)\)$", ln)
        if m:
            cur = members.setdefault(m.group(1), [])
            continue
        m = re.match(r"^\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)", ln)
        if m and cur is not None:
            cur.append((m.group(1), int(m.group(2), 16)))
    return members


def check_fat_archive(archive):
    members = sections_by_member(archive)
    lto = [m for m, secs in members.items() if any(n.startswith(".gnu.lto_") for n, _ in secs)]
    slim = [m for m in lto if not any(n.startswith(".text") and size > 0 for n, size in members[m])]
    check(bool(members), f"{os.path.basename(archive)} has members")
    check(not slim, f"every member with LTO bytecode has regular code too ({len(lto)} of {len(members)} carry LTO)"
          + (": slim " + " ".join(slim) if slim else ""))


def check_shared(so):
    rc, out = run(["readelf", "-dW", so])
    m = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", out)
    check(bool(m) and re.fullmatch(rf"lib{re.escape(PC_NAME)}\.so\.\d+(\.\d+)*", m.group(1)) is not None,
          f"{os.path.basename(so)}'s soname carries the version ({m.group(1) if m else 'none'})")


def compilers():
    """[(name, command)]: the build's own compiler in a sanitizer build, else g++ and clang++."""
    if SANITIZE != "none":
        return [(os.path.basename(CXX[0]), CXX)]
    return [(c, [shutil.which(c)]) for c in ("g++", "clang++") if shutil.which(c)]


def check_link(env, libdir, tmp):
    archive = os.path.join(libdir, f"lib{PC_NAME}.a")
    shared = sorted(glob.glob(os.path.join(libdir, f"lib{PC_NAME}.so.*")))
    if os.path.exists(archive):
        check_fat_archive(archive)
    if shared:
        check_shared(shared[0])
    cflags, libs = pkg_config(env, "--cflags"), pkg_config(env, "--libs")
    # Both installed: -lweft finds the shared one, so the static one is named by
    # path, with what the .pc gives for static linking (Libs.private: Boost.Context).
    variants = []
    if os.path.exists(archive) and shared:
        # pkgconf puts the sysroot before Libs.private's absolute paths too, and
        # Boost.Context's archive there is a system file, outside the DESTDIR.
        dest = env["PKG_CONFIG_SYSROOT_DIR"]
        static_libs = [f[len(dest):] if f.startswith(dest + "/") and not os.path.exists(f) else f
                       for f in pkg_config(env, "--static", "--libs")]
        variants.append(("static", [archive if f == f"-l{PC_NAME}" else f for f in static_libs], {}))
    elif os.path.exists(archive):
        variants.append(("static", libs, {}))
    if shared:
        variants.append(("shared", libs, {"LD_LIBRARY_PATH": libdir}))
    comps = compilers()
    if not comps:
        skip("neither g++ nor clang++ is installed")
    for cname, cxx in comps:
        for lto in ([], ["-flto"]):
            how = f"{cname}{' -flto' if lto else ''}"
            for prog in PROGRAMS:
                obj = os.path.join(tmp, f"{prog}.{cname}{'.lto' if lto else ''}.o")
                rc, out = run(cxx + ["-std=c++20", "-O2"] + lto + cflags
                              + ["-c", os.path.join(SOURCE, "tests", "tools", prog), "-o", obj])
                if not check(rc == 0, f"{how}: {prog} compiles with the .pc's Cflags"):
                    print(out)
                    continue
                for vname, vlibs, venv in variants:
                    exe = obj[:-2] + "." + vname
                    rc, out = run(cxx + lto + [obj, "-o", exe] + vlibs)
                    if not check(rc == 0, f"{how}: {prog} links against the {vname} libweft"):
                        print(out)
                        continue
                    rc, out = run([exe], env=dict(os.environ, **venv), timeout=120)
                    if rc == 77:
                        skip(out.strip())
                    if not check(rc == 0, f"{how}: {prog} ({vname}) runs (exit {rc})"):
                        print(out)


def main():
    work = os.path.join(BUILD, "installed-tree-" + CHECK)
    env, inc, libdir = install(os.path.join(work, "dest"))
    if CHECK == "headers":
        check_headers(inc)
    elif CHECK == "link":
        tmp = os.path.join(work, "programs")
        os.makedirs(tmp, exist_ok=True)
        check_link(env, libdir, tmp)
    else:
        sys.exit(f"unknown check {CHECK}")
    if failures:
        print(f"{len(failures)} check(s) failed; the installed tree is kept in {work}")
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)


main()
