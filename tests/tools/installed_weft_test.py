#!/usr/bin/env python3
"""weft used the way another project uses it, checked from outside this build.

The build is installed into a temporary DESTDIR and a small program
(tests/tools/user_program.cpp) is compiled and linked with nothing but what
`pkg-config --cflags --libs <PC_NAME>` gives, as a user of the installed weft
would; a parent meson project that takes weft as a subproject is configured too.

Checks (first argument):
  build-mode   a program whose translation units are built in another sanitizer
               mode than libweft (plain / asan / tsan) fails to LINK, and the
               error names the symbol that says which libweft to use; the program
               built in libweft's own mode links and runs; a parent project's
               b_sanitize reaches weft built as its subproject.
  stack-clash  the user's own code gets -fstack-clash-protection (from weft.pc's
               Cflags and from weft_dep in a parent project), so a fiber of the
               user's whose frames are larger than the guard page still faults in
               its guard and is reported as a fiber stack overflow naming it.

Usage: installed_weft_test.py CHECK BUILD_DIR SOURCE_DIR PC_NAME B_SANITIZE B_LTO MESON CXX...
Exit status: 0 passed, 1 failed, 77 skipped (a tool or the kernel is missing).
"""
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

CHECK, BUILD, SOURCE, PC_NAME, SANITIZE, LTO, MESON = sys.argv[1:8]
CXX = sys.argv[8:]
CLASH_FLAG = "-fstack-clash-protection"
# Stack used before the 16 KiB frames start: they meet the 4 KiB guard at four phases,
# and without probes most of them step over it.
OVERFLOW_OFFSETS = (0, 4096, 8192, 12288)
PROGRAM = os.path.join(SOURCE, "tests", "tools", "user_program.cpp")

MODE_FLAGS = {"plain": [], "asan": ["-fsanitize=address"], "tsan": ["-fsanitize=thread"]}
REMEDY = {
    "plain": "weft_build_mode_plain__rebuild_libweft_without_b_sanitize",
    "asan": "weft_build_mode_asan__rebuild_libweft_with_b_sanitize_address",
    "tsan": "weft_build_mode_tsan__rebuild_libweft_with_b_sanitize_thread",
}
LIB_MODE = "asan" if "address" in SANITIZE else "tsan" if "thread" in SANITIZE else "plain"

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(77)


def run(cmd, env=None, cwd=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    return p.returncode, p.stdout + p.stderr


def install(dest):
    """Installs the build into DESTDIR `dest`; returns the environment pkg-config needs."""
    if not MESON or not shutil.which("pkg-config"):
        skip("meson or pkg-config not found")
    rc, out = run([MESON, "install", "-C", BUILD, "--no-rebuild", "--destdir", dest, "--quiet"])
    if rc != 0:
        print(out)
        sys.exit("meson install into a temporary DESTDIR failed")
    pcdirs = [d for d, _, files in os.walk(dest) if PC_NAME + ".pc" in files]
    if not pcdirs:
        sys.exit(f"{PC_NAME}.pc was not installed")
    env = dict(os.environ)
    env["PKG_CONFIG_PATH"] = os.pathsep.join([pcdirs[0]] + [p for p in [env.get("PKG_CONFIG_PATH")] if p])
    env["PKG_CONFIG_SYSROOT_DIR"] = dest  # the .pc names paths under the real prefix
    return env


def pkg_config(env, what):
    rc, out = run(["pkg-config", what, PC_NAME], env=env)
    if rc != 0:
        sys.exit(f"pkg-config {what} {PC_NAME} failed: {out}")
    return shlex.split(out)


def build(tmp, name, cflags, ldflags):
    """Compiles and links the user program; returns (compiled, linked, output)."""
    obj, exe = os.path.join(tmp, name + ".o"), os.path.join(tmp, name)
    lto = ["-flto"] if LTO == "true" else []
    rc, out = run(CXX + ["-std=c++20", "-O0"] + lto + cflags + ["-c", PROGRAM, "-o", obj])
    if rc != 0:
        return False, False, out
    rc, out = run(CXX + lto + [obj, "-o", exe] + ldflags)
    return True, rc == 0, out


def compiler_builds(tmp, flags):
    """True when the compiler can build and link any program with `flags`."""
    src = os.path.join(tmp, "probe.cpp")
    with open(src, "w", encoding="utf-8") as f:
        f.write("int main() { return 0; }\n")
    rc, _ = run(CXX + flags + [src, "-o", os.path.join(tmp, "probe")])
    return rc == 0


def check_build_mode(tmp, env):
    cflags, libs = pkg_config(env, "--cflags"), pkg_config(env, "--libs")
    compiled, linked, out = build(tmp, "same_mode", cflags, libs)
    check(compiled and linked, f"code built {LIB_MODE} links against the {LIB_MODE} libweft ({PC_NAME}.pc)")
    if not linked:
        print(out)
    else:
        rc, out = run([os.path.join(tmp, "same_mode")])
        check(rc in (0, 77), f"it runs (exit {rc})")
        if rc not in (0, 77):
            print(out)

    # The other modes: the user's translation units built with other flags.
    if LIB_MODE == "plain":
        others = {m: (cflags + MODE_FLAGS[m], libs + MODE_FLAGS[m]) for m in ("asan", "tsan")}
    else:
        unsanitized = [f for f in cflags if not f.startswith("-fsanitize")]
        others = {"plain": (unsanitized, libs)}  # the .pc's Libs bring the sanitizer runtime
    tried = 0
    for mode, (cf, lf) in others.items():
        if not compiler_builds(tmp, MODE_FLAGS[mode] + [f for f in lf if f.startswith("-fsanitize")]):
            print(f"note: the compiler cannot build a {mode} program here; that case is not checked")
            continue
        tried += 1
        failed_before = len(failures)
        compiled, linked, out = build(tmp, "mode_" + mode, cf, lf)
        check(compiled, f"code built {mode} compiles against the weft headers")
        check(compiled and not linked, f"code built {mode} fails to link against the {LIB_MODE} libweft")
        check(REMEDY[mode] in out, f"the link error names {REMEDY[mode]}")
        undefined = [ln for ln in out.splitlines() if "undefined reference" in ln or "undefined symbol" in ln]
        check(bool(undefined) and all("weft_build_mode_" in ln for ln in undefined),
              "the only undefined symbol is the build-mode one")
        if len(failures) > failed_before:
            print(out)
    if tried == 0:
        skip("the compiler builds no program in another sanitizer mode here")


def configure_parent(tmp, extra):
    """Configures a parent project with weft as its subproject; returns its build.ninja text."""
    parent = os.path.join(tmp, "parent")
    os.makedirs(os.path.join(parent, "subprojects"))
    os.symlink(SOURCE, os.path.join(parent, "subprojects", "weft"))
    shutil.copy(PROGRAM, os.path.join(parent, "app.cpp"))
    with open(os.path.join(parent, "meson.build"), "w", encoding="utf-8") as f:
        f.write("project('app', 'cpp', default_options : ['cpp_std=c++20'])\n"
                "weft_dep = dependency('weft', fallback : ['weft', 'weft_dep'])\n"
                "executable('app', 'app.cpp', dependencies : weft_dep)\n")
    env = dict(os.environ)
    env["CXX"] = " ".join(shlex.quote(c) for c in CXX)
    rc, out = run([MESON, "setup", os.path.join(parent, "b"), "-Dweft:tests=false"] + extra, env=env, cwd=parent)
    if rc != 0:
        print(out)
        sys.exit("configuring a parent project with weft as its subproject failed")
    with open(os.path.join(parent, "b", "build.ninja"), encoding="utf-8") as f:
        return f.read()


def compile_args(ninja, source_suffix):
    """The ARGS line of the compile rule whose input ends with `source_suffix`."""
    lines = ninja.splitlines()
    for i, ln in enumerate(lines):
        if ln.startswith("build ") and ": cpp_COMPILER " in ln and ln.rstrip().endswith(source_suffix):
            for body in lines[i + 1:i + 6]:
                if body.strip().startswith("ARGS = "):
                    return body
    return ""


def check_subproject_sanitize(tmp):
    ninja = configure_parent(tmp, [f"-Db_sanitize={SANITIZE}"])
    args = compile_args(ninja, "runtime/uring/worker.cpp")
    check(bool(args), "the parent's build compiles weft's runtime/uring/worker.cpp")
    if SANITIZE != "none":
        check(f"-fsanitize={SANITIZE}" in args, f"weft as a subproject is built with the parent's b_sanitize={SANITIZE}")
    else:
        check("-fsanitize" not in args, "weft as a subproject of a plain parent is built plain")


def check_stack_clash(tmp, env):
    if not compiler_builds(tmp, [CLASH_FLAG]):
        skip(f"the compiler does not support {CLASH_FLAG}")
    cflags, libs = pkg_config(env, "--cflags"), pkg_config(env, "--libs")
    check(CLASH_FLAG in cflags, f"{PC_NAME}.pc's Cflags carry {CLASH_FLAG}: {' '.join(cflags)}")
    args = compile_args(configure_parent(tmp, [f"-Db_sanitize={SANITIZE}"]), "app.cpp")
    check(CLASH_FLAG in args, f"a parent project's own code gets {CLASH_FLAG} from weft_dep")

    compiled, linked, out = build(tmp, "overflow", cflags, libs)
    check(compiled and linked, "the user program builds with the .pc's flags alone")
    if not linked:
        print(out)
        return
    exe = os.path.join(tmp, "overflow")
    for offset in OVERFLOW_OFFSETS:
        rc, out = run([exe, "overflow", str(offset)])
        if rc == 77:
            skip(out.strip())
        reported = "fiber stack overflow" in out and "big-frame#1" in out
        check(rc != 0 and reported,
              f"16 KiB frames overflowing after {offset} bytes: reported as a fiber stack overflow naming the fiber")
        if not reported:
            print(f"exit {rc}, output:\n{out}")


def main():
    tmp = tempfile.mkdtemp(prefix="weft-installed-")
    try:
        env = install(os.path.join(tmp, "dest"))
        if CHECK == "build-mode":
            check_build_mode(tmp, env)
            check_subproject_sanitize(tmp)
        elif CHECK == "stack-clash":
            check_stack_clash(tmp, env)
        else:
            sys.exit(f"unknown check {CHECK}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)


main()
