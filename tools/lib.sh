# shellcheck shell=bash
# tools/lib.sh: shell functions shared by tools/test, bench, demo, explore and bench-lab/.
# Source it (do not run it). It sets:
#   WEFT_ROOT    the repository root (computed from this file's location)
#   WEFT_BUILDS  the build directory names it knows: release asan tsan
# and defines:
#   weft_log MSG...          progress message on stderr
#   weft_ensure_pkgs         installs the missing Debian packages (apt-get)
#   weft_configure BUILD     meson setup build/BUILD unless already configured
#   weft_build BUILD [T...]  weft_configure + ninja -C build/BUILD [the targets T only]
#   weft_build_progress BUILD [T...]  the same, with a progress line instead of ninja's
#   weft_is_build NAME       true if NAME is one of WEFT_BUILDS
# and, for the echo tools (demo, bench-lab/echo-ab, bench-lab/echo-solo):
#   weft_on_cpu0             array: the taskset prefix pinning to CPU 0 (empty on 1 CPU)
#   weft_pin CPU CMD...      runs CMD pinned to CPU when the machine has more than one
#   weft_wait_listening PORT true once 127.0.0.1:PORT accepts (gives up after 5 s)
#   weft_median NUMS         the median of space-separated numbers
#   weft_field KEY LINE      the value of KEY=value in LINE
#   weft_echo_client [CMD]   sets the array `client`: CMD split into words, or
#                            weft-loadgen (built first if missing)
#   weft_perf_ok             true when `perf stat -e task-clock` works here
#   weft_task_clock_ms FILE  the task-clock ms in a `perf stat -x, -o FILE` output
#   weft_cpu_ms_ticks PID T0 CPU ms of PID since its tick count T0 (weft_cpu_ticks)
#   weft_cpu_ticks PID       utime + stime of PID in clock ticks
#   weft_us_per_req MS RPS D CPU µs per request: MS over RPS x D requests

WEFT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WEFT_BUILDS="release asan tsan"

# Everything the build, the tests and the tools need, as Debian 12 packages.
WEFT_PKGS=(meson ninja-build g++ clang libclang-rt-14-dev pkg-config
  libboost-context-dev liburing-dev libspdlog-dev catch2 valgrind libseccomp-dev)

weft_log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

weft_is_build() {
  case " $WEFT_BUILDS " in
    *" $1 "*) return 0 ;;
    *) return 1 ;;
  esac
}

# Installs the packages of WEFT_PKGS that dpkg does not list as installed.
# apt-get update runs only when something is missing. Needs root or sudo.
weft_ensure_pkgs() {
  local missing=() p
  for p in "${WEFT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  weft_log "installing missing packages: ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      weft_log "error: not root and no sudo; install as root: apt-get install ${missing[*]}"
      return 1
    fi
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -q >&2 || return 1
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 || return 1
}

# weft_configure BUILD: meson setup build/BUILD with that build's compiler and
# options, unless build/BUILD/build.ninja already exists (ninja then re-runs
# meson by itself when a meson.build changed). A directory left behind by a
# setup that failed is wiped first. The options used are kept in
# build/BUILD/weft-setup-args; when this file asks for other options (or a
# directory predates the stamp), they are applied with meson configure (which
# keeps the compiled objects that are still valid; the compiler stays as set up).
weft_configure() {
  local b=$1 dir="$WEFT_ROOT/build/$1" cxx args=()
  case $b in
    # LTO: the fiber switch path crosses translation units (yield -> worker).
    release) cxx=g++; args=(--buildtype=release -Db_lto=true) ;;
    asan) cxx=clang++; args=(--buildtype=debugoptimized "-Db_sanitize=address,undefined"
      -Db_lundef=false -Dstress_scale=25) ;;
    tsan) cxx=clang++; args=(--buildtype=debugoptimized -Db_sanitize=thread
      -Db_lundef=false -Dstress_scale=10) ;;
    *) weft_log "error: unknown build '$b' (known: $WEFT_BUILDS)"; return 2 ;;
  esac
  local stamp="$dir/weft-setup-args"
  if [ -f "$dir/build.ninja" ]; then
    [ "$(cat "$stamp" 2>/dev/null)" = "${args[*]}" ] && return 0
    # (meson configure, not setup --reconfigure: meson 1.0 drops b_* options there)
    weft_log "build/$b: applying options: meson configure build/$b ${args[*]}"
    (cd "$WEFT_ROOT" && meson configure "build/$b" "${args[@]}") || return 1
    echo "${args[*]}" >"$stamp"
    return 0
  fi
  if [ -e "$dir" ]; then
    weft_log "build/$b exists but is not configured: wiping it"
    rm -rf -- "$dir"
  fi
  weft_log "configuring build/$b: CXX=$cxx meson setup build/$b ${args[*]}"
  (cd "$WEFT_ROOT" && CXX=$cxx meson setup "build/$b" "${args[@]}") || return 1
  echo "${args[*]}" >"$stamp"
}

# weft_build BUILD [TARGET...]: configures if needed, then compiles the given
# targets (paths under build/BUILD, e.g. examples/weft-echo/weft-echo), or everything.
weft_build() {
  weft_configure "$1" || return 1
  weft_log "building build/$1${2:+: ${*:2}}"
  ninja -C "$WEFT_ROOT/build/$1" "${@:2}"
}
# weft_build_progress BUILD [T...]: as weft_build, but quiet: the compiler's
# output goes to build/BUILD/weft-build.log and a progress line ([done/total])
# is printed every few seconds; any warning is shown at the end, and the log's
# tail when the build fails. For the user-facing tools (demo, bench).
weft_build_progress() {
  weft_configure "$1" || return 1
  local dir="$WEFT_ROOT/build/$1" log="$WEFT_ROOT/build/$1/weft-build.log" pid last="" now
  if ninja -C "$dir" -n "${@:2}" 2>&1 | grep -q '^ninja: no work to do'; then
    return 0  # up to date
  fi
  weft_log "building build/$1 (${*:2}): the first build takes about 3 minutes on 2 cores; later ones reuse it"
  NINJA_STATUS='[%f/%t] ' ninja -C "$dir" "${@:2}" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    now=$(grep -o '^\[[0-9]*/[0-9]*\]' "$log" | tail -1)
    [ -n "$now" ] && [ "$now" != "$last" ] && weft_log "  build/$1 $now" && last=$now
  done
  if ! wait "$pid"; then
    tail -40 "$log" >&2
    weft_log "error: the build failed (whole log: build/$1/weft-build.log)"
    return 1
  fi
  grep -A3 'warning:' "$log" >&2 || true
  weft_log "build/$1 done"
}
# The programs the echo tools, the demo and the benchmarks run.
# shellcheck disable=SC2034  # read by the scripts that source this file
WEFT_TOOL_TARGETS=(examples/weft-echo/weft-echo examples/weft-loadgen/weft-loadgen tools/weft-bench/weft-bench)

weft_on_cpu0=()
# shellcheck disable=SC2034  # read by the scripts that source this file
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then weft_on_cpu0=(taskset -c 0); fi
weft_pin() {
  if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then taskset -c "$1" "${@:2}"; else "${@:2}"; fi
}
weft_wait_listening() {
  local _
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}
weft_median() { tr ' ' '\n' <<<"$*" | grep . | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
weft_field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }
weft_echo_client() {
  local lg="$WEFT_ROOT/build/release/examples/weft-loadgen/weft-loadgen"
  if [ -z "${1:-}" ] && [ ! -x "$lg" ]; then
    weft_ensure_pkgs
    weft_build release examples/weft-loadgen/weft-loadgen >&2
  fi
  # shellcheck disable=SC2034  # read by the calling script
  read -r -a client <<<"${1:-$lg}"
}
weft_perf_ok() { command -v perf >/dev/null && perf stat -e task-clock -x, -o /dev/null -- true 2>/dev/null; }
weft_task_clock_ms() { awk -F, '$3 == "task-clock" {print $1}' "$1"; }
weft_cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
weft_cpu_ms_ticks() { echo $((($(weft_cpu_ticks "$1") - $2) * 1000 / $(getconf CLK_TCK))); }
weft_us_per_req() { awk -v ms="${1:-0}" -v rps="$2" -v d="$3" 'BEGIN {printf "%.2f", (rps > 0 ? ms * 1000 / (rps * d) : 0)}'; }
