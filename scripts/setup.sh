#!/usr/bin/env bash
# Prepares this machine to build kiln and to run it under Nix. Idempotent; meant for a FRESH
# Debian 12 machine running as root (CI and new machines have nothing installed by hand).
#
# - Debian packages: nix-bin (Nix 2.8), nix-setup-systemd (the nixbld build users and
#   /etc/nix/nix.conf), build-essential (gcc, make and libc.a for the static link), file, and
#   the build systems the Debian-source tests (tests/fixtures/debian) use from the host:
#   cmake, meson (with python3), ninja-build, pkgconf (pkg-config).
#   apt is skipped when all of them are already there, so a second run takes about a second.
# - The Rust toolchain: cargo, rustfmt, clippy and the x86_64-unknown-linux-gnu target.
# - Nix: the nixbld group and users exist, build-users-group is set, and a tiny derivation really
#   builds inside the sandbox (checked, not assumed: Nix silently falls back to no sandbox).
#
# Quiet when all is well; on failure prints what failed and its output, and exits non-zero.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ "$(id -u)" = 0 ] || kiln_die "scripts/setup.sh must run as root (it installs Debian packages and builds with Nix as root)."

export DEBIAN_FRONTEND=noninteractive

# ---------------------------------------------------------------------------------------------
# 1. Debian packages
# ---------------------------------------------------------------------------------------------
missing=()
for tool in nix-build nix-store nix-instantiate nix; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("command $tool (nix-bin)")
done
for tool in gcc cc make; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("command $tool (build-essential)")
done
command -v file >/dev/null 2>&1 || missing+=("command file")
# Lent to the sandbox by the Debian-source tests (tests/fixtures/debian): CMake and Meson
# projects, and pkg-config for finding dependencies.
# The local-mode tests drive `kiln shell` through script(1) (bsdutils) and look for processes
# left behind with pgrep (procps); the local benchmark edits JSON with python3.
for pair in cmake:cmake meson:meson ninja:ninja-build pkg-config:pkgconf script:bsdutils pgrep:procps python3:python3; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("command ${pair%%:*} (${pair#*:})")
done
# The static link of kiln needs glibc's static archive (libc6-dev, pulled in by build-essential).
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || missing+=("/usr/lib/x86_64-linux-gnu/libc.a (libc6-dev)")
# nix-setup-systemd creates the nixbld group and users, and /etc/nix/nix.conf.
getent group nixbld >/dev/null 2>&1 || missing+=("group nixbld (nix-setup-systemd)")
[ -e /etc/nix/nix.conf ] || missing+=("/etc/nix/nix.conf (nix-setup-systemd)")

if [ "${#missing[@]}" -gt 0 ]; then
    kiln_info "setup: installing Debian packages (missing: ${missing[*]})"
    kiln_quietly "apt-get update" apt-get update
    # nix-setup-systemd is only a Recommends of nix-bin: name it, since images often turn
    # recommends off.
    kiln_quietly "apt-get install" apt-get install -y --no-install-recommends \
        nix-bin nix-setup-systemd build-essential file cmake meson ninja-build pkgconf \
        bsdutils procps python3
    for tool in nix-build nix-store nix-instantiate nix gcc make file cmake meson ninja pkg-config script pgrep python3; do
        command -v "$tool" >/dev/null 2>&1 || kiln_die "apt-get install succeeded but '$tool' is still not on PATH ($PATH)."
    done
fi

# ---------------------------------------------------------------------------------------------
# 2. Rust toolchain
# ---------------------------------------------------------------------------------------------
command -v cargo >/dev/null 2>&1 || kiln_die "cargo is not on PATH. kiln needs a Rust toolchain (rust-version in Cargo.toml); install it with rustup."
if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed 2>/dev/null | grep -qx "$KILN_TARGET"; then
        kiln_info "setup: adding Rust target $KILN_TARGET"
        kiln_quietly "rustup target add $KILN_TARGET" rustup target add "$KILN_TARGET"
    fi
else
    host="$(rustc -vV | sed -n 's/^host: //p')"
    [ "$host" = "$KILN_TARGET" ] || kiln_die "no rustup, and rustc's host is '$host', not $KILN_TARGET: cannot build the static kiln."
fi
cargo fmt --version >/dev/null 2>&1 || kiln_die "rustfmt is missing: rustup component add rustfmt"
cargo clippy --version >/dev/null 2>&1 || kiln_die "clippy is missing: rustup component add clippy"

# ---------------------------------------------------------------------------------------------
# 3. Nix can build as root in the sandbox
# ---------------------------------------------------------------------------------------------
# Root's builds run as the nixbld users. Debian's postinst makes nixbld1..10; make them if a
# broken or partial install did not.
if ! getent group nixbld >/dev/null 2>&1; then
    kiln_quietly "groupadd nixbld" groupadd --force --system nixbld
fi
if [ -z "$(getent group nixbld | cut -d: -f4)" ]; then
    nologin="$(command -v nologin || echo /usr/sbin/nologin)"
    for n in $(seq 1 10); do
        id "nixbld$n" >/dev/null 2>&1 && continue
        kiln_quietly "useradd nixbld$n" useradd --system --comment "Nix build user $n" \
            --home-dir /var/empty --gid nixbld --groups nixbld --no-user-group \
            --shell "$nologin" "nixbld$n"
    done
fi

# Nix 2.8 defaults build-users-group to nixbld for root; set it if a config emptied it.
users_group="$(nix --extra-experimental-features nix-command show-config 2>/dev/null |
    sed -n 's/^build-users-group = //p')" || true
if [ -z "$users_group" ]; then
    kiln_info "setup: setting build-users-group = nixbld in /etc/nix/nix.conf"
    mkdir -p /etc/nix
    printf '\n# Added by kiln scripts/setup.sh: root builds as the nixbld users.\nbuild-users-group = nixbld\n' >>/etc/nix/nix.conf
fi

# The proof: a derivation that only succeeds inside the sandbox (build dir /build, no /root).
# Its result stays in the store, so later runs only evaluate it. It runs the host's /bin/sh,
# lent by extra-sandbox-paths (KILN_NIX_HOST_OPTS): kiln and its store toolchain do not exist
# yet at this point. No build of kiln's sees the host.
# shellcheck disable=SC2016 # $NIX_BUILD_TOP and $out are for the builder's shell, not ours.
sandbox_check='derivation {
  name = "kiln-setup-sandbox-check";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "test \"$NIX_BUILD_TOP\" = /build && test ! -e /root && echo sandboxed > \"$out\"" ];
}'
kiln_quietly "a sandboxed Nix build (nix-build ${KILN_NIX_HOST_OPTS[*]})" \
    nix-build --no-out-link "${KILN_NIX_HOST_OPTS[@]}" -E "$sandbox_check"
