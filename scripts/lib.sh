# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables here are used by the scripts that source this file
# Shared by the scripts in this directory: the repository root, messages, and the one place that
# says how we call Nix. Source it; do not run it.
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The repository root (this file lives in <root>/scripts).
KILN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KILN_ROOT

# The host target kiln is built for, and where build-static.sh puts the static binary.
KILN_TARGET="x86_64-unknown-linux-gnu"
KILN_STATIC_DIR="$KILN_ROOT/target/static"
KILN_STATIC_PATH="$KILN_STATIC_DIR/$KILN_TARGET/release/kiln"

# Options for every nix-build / nix-instantiate the scripts and tests run:
#
# - sandbox true: Debian's /etc/nix/nix.conf says `sandbox = false`; we want the real thing.
# - sandbox-fallback false: Nix's default silently builds WITHOUT a sandbox when it cannot make
#   one. We would rather fail loudly than test something other than what we think we test.
# - substituters '': no binary cache (there is no network to reach one anyway).
#
# KILN_NIX_PURE_OPTS is all of that: the sandbox sees store paths only. Builds that use kiln's
# stage-0 toolchain (bootstrap/stage0; its .debs come from scripts/fetch-stage0-debs.sh) need
# nothing else but /bin/sh, which configure scripts and make recipes run: `kiln_pure_opts KILN`
# adds it, mapped to the stage-0 dash (a store path) through sandbox-paths, as NixOS and
# upstream Nix (built with a sandbox shell) map theirs. Debian's Nix maps none.
KILN_NIX_PURE_OPTS=(
    --option sandbox true
    --option sandbox-fallback false
    --option substituters ''
)

# kiln_pure_opts KILN: builds the stage-0 toolchain with the static kiln KILN (once; then Nix
# finds it built) and adds `/bin/sh=<its dash>` to KILN_NIX_PURE_OPTS.
kiln_pure_opts() {
    local toolchain
    toolchain="$(nix-build --no-out-link "${KILN_NIX_PURE_OPTS[@]}" \
        -E "(import $KILN_ROOT/bootstrap/stage0 { kiln = $1; }).toolchain" | tail -n 1)" ||
        kiln_die "building the stage-0 toolchain failed (run scripts/fetch-stage0-debs.sh first)"
    KILN_NIX_PURE_OPTS+=(--option extra-sandbox-paths "/bin/sh=$toolchain/usr/bin/dash")
}
# KILN_NIX_HOST_OPTS adds extra-sandbox-paths: IMPURE. It lends the host's toolchain (gcc,
# coreutils, libc, ...) to the sandbox. No test uses it: only the benchmarks that compare kiln's
# store toolchain with the host's (bench-toolchain.sh, bench-local.sh) and setup.sh's check
# that Nix can sandbox at all on this machine (before kiln exists, with the host's /bin/sh).
KILN_NIX_HOST_OPTS=(
    "${KILN_NIX_PURE_OPTS[@]}"
    --option extra-sandbox-paths "/bin /usr /lib /lib64 /etc/alternatives"
)

# Messages go to stderr so stdout stays for results (paths).
kiln_info() { printf '%s\n' "$*" >&2; }
kiln_die() {
    printf '\nERROR: %s\n\n' "$*" >&2
    exit 1
}

# kiln_quietly LABEL CMD...: runs CMD with its output captured; on failure prints the output and
# dies naming LABEL. Quiet on success, loud on failure.
kiln_quietly() {
    local label="$1" log status
    shift
    log="$(mktemp)"
    if "$@" >"$log" 2>&1; then
        rm -f "$log"
        return 0
    else
        status=$?
    fi
    {
        printf '\n----- output of: %s -----\n' "$*"
        cat "$log"
        printf -- '----- end of output (exit status %s) -----\n' "$status"
    } >&2
    rm -f "$log"
    kiln_die "$label failed (exit status $status)"
}
