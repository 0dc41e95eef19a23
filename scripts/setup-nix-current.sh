#!/usr/bin/env bash
# Makes a second, current Nix for the tests: Debian trixie's nix-bin (Nix 2.26) in a trixie root
# of its own, entered with scripts/nix-current. Idempotent; runs as root, like scripts/setup.sh.
#
#   bash scripts/setup-nix-current.sh
#   scripts/nix-current nix-build --version
#
# - The root is cached OUTSIDE the repository, in $KILN_CACHE/nix-current/root (KILN_CACHE
#   defaults to ~/.cache/kiln). It has its own /nix/store: the host's Nix (2.8) and this one
#   never share a store.
# - It is made with `debootstrap --variant=minbase trixie` and then `apt-get install nix-bin`
#   inside it (`debootstrap --include=nix-bin` fails on nix-bin's systemd and dbus dependencies).
#   The mirror is the host's: the first Debian archive in its apt sources, read at run time
#   (KILN_DEBIAN_MIRROR overrides it). No address is written in the repository.
# - The root is built in a temporary directory next to its final place and renamed into place
#   last, so an interrupted run leaves nothing half-made (the next run removes the leftovers).
# - Once made, a run checks the stamp file (written last) and that the root's nix-build reports
#   2.26, and returns in about a second.
# - Before the stamp is written, a tiny derivation really builds in Nix 2.26's sandbox through
#   scripts/nix-current (checked, not assumed: Nix silently falls back to no sandbox, and refuses
#   to sandbox in a plain chroot).
#
# Quiet when all is well; on failure prints what failed and its output, and exits non-zero.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ "$(id -u)" = 0 ] || kiln_die "scripts/setup-nix-current.sh must run as root (debootstrap, chroot and mount namespaces need it)."

export DEBIAN_FRONTEND=noninteractive

suite=trixie
want_version="2.26."
cache="${KILN_CACHE:-$HOME/.cache/kiln}/nix-current"
root="$cache/root"
# Written last, inside the root: its presence says the root is complete.
stamp_name="etc/kiln-nix-current.stamp"

# nix_version DIR: what `nix-build --version` says in the root DIR (entered as the tests enter it:
# Nix needs /proc even for --version, so a plain chroot will not do).
nix_version() {
    KILN_NIX_CURRENT_ROOT="$1" "$KILN_ROOT/scripts/nix-current" nix-build --version 2>&1
}

# root_ok DIR: DIR is a finished root (its stamp is there) whose nix-build is 2.26. A finished
# root whose Nix does not answer is more likely a problem of this machine (namespaces, mounts)
# than a damaged root: say so rather than make the root again at every run.
root_ok() {
    local version
    [ -f "$1/$stamp_name" ] || return 1
    version="$(nix_version "$1")" ||
        kiln_die "the Nix 2.26 root at $1 is complete, but 'scripts/nix-current nix-build --version' failed there: $version
If the root is damaged, remove it (rm -rf --one-file-system $1) and run scripts/setup-nix-current.sh again."
    [[ "$version" == "nix-build (Nix) $want_version"* ]]
}

root_ok "$root" && exit 0

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
# Another run may have made it while we waited for the lock.
root_ok "$root" && exit 0

# remove_tree DIR: removes a root made (or half-made) here, never crossing into a mount. The
# mounts debootstrap and apt make live in a private mount namespace and die with it, so none
# should be left; if one is, stop rather than delete through it.
remove_tree() {
    [ -e "$1" ] || return 0
    if awk -v dir="$1/" 'index($5 "/", dir) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
        kiln_die "something is mounted under $1; unmount it (see /proc/self/mountinfo), then run scripts/setup-nix-current.sh again."
    fi
    rm -rf --one-file-system "$1"
}

# Leftovers of an interrupted run, and an old root that failed the checks above.
for old in "$cache"/root.tmp.* "$cache"/root.old.*; do
    [ -e "$old" ] || continue
    kiln_info "setup-nix-current: removing $old (left by an earlier run)"
    remove_tree "$old"
done

# ---------------------------------------------------------------------------------------------
# 1. The host's tools and mirror
# ---------------------------------------------------------------------------------------------
if ! command -v debootstrap >/dev/null 2>&1; then
    kiln_info "setup-nix-current: installing Debian package debootstrap"
    kiln_quietly "apt-get update" apt-get update
    kiln_quietly "apt-get install debootstrap" apt-get install -y --no-install-recommends debootstrap
    command -v debootstrap >/dev/null 2>&1 || kiln_die "apt-get install debootstrap succeeded but debootstrap is still not on PATH ($PATH)."
fi
[ -e "/usr/share/debootstrap/scripts/$suite" ] ||
    kiln_die "this debootstrap does not know Debian $suite (no /usr/share/debootstrap/scripts/$suite); upgrade the debootstrap package."
for tool in unshare chroot mount flock; do
    command -v "$tool" >/dev/null 2>&1 || kiln_die "command $tool is missing (util-linux / coreutils)."
done

# host_mirror: the first Debian archive (not -security, -updates, ...) among the host's `deb`
# sources, deb822 (*.sources) or one-line (*.list) format.
host_mirror() {
    local file
    for file in /etc/apt/sources.list.d/*.sources; do
        [ -f "$file" ] || continue
        # Stanzas are separated by blank lines; keep those of Types deb whose Suites hold a plain
        # codename and whose URI is a Debian archive.
        awk '
            function flush() {
                if (enabled && types ~ /(^| )deb( |$)/ && suites ~ /(^| )[a-z]+( |$)/ && uri ~ /\/debian\/?$|\/debian\//) {
                    print uri; found = 1; exit
                }
                types = ""; suites = ""; uri = ""; enabled = 1
            }
            BEGIN { enabled = 1 }
            /^[[:space:]]*$/ { flush(); next }
            /^[[:space:]]*#/ { next }
            tolower($1) == "types:"   { $1 = ""; types = $0 " " }
            tolower($1) == "suites:"  { $1 = ""; suites = $0 " " }
            tolower($1) == "uris:"    { uri = $2 }
            tolower($1) == "enabled:" { enabled = (tolower($2) != "no") }
            END { if (!found) flush() }
        ' "$file" | head -n 1
    done
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$file" ] || continue
        # deb [options] URI SUITE COMPONENTS...
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$file" |
            awk '$1 == "deb" && $3 ~ /^[a-z]+$/ && ($2 ~ /\/debian\/?$/ || $2 ~ /\/debian\//) { print $2 }'
    done
}
mirror="${KILN_DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
    mirror="$(host_mirror | head -n 1)"
fi
[ -n "$mirror" ] || kiln_die "found no Debian archive in the host's apt sources (/etc/apt/sources.list, /etc/apt/sources.list.d/); set KILN_DEBIAN_MIRROR to one."

# A proxy apt uses on the host is used for the root too.
proxy="$(apt-config dump 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -n 1)" || true
if [ -n "$proxy" ] && [ -z "${http_proxy:-}" ]; then
    export http_proxy="$proxy"
fi

# ---------------------------------------------------------------------------------------------
# 2. debootstrap, then nix-bin inside, in a temporary directory
# ---------------------------------------------------------------------------------------------
tmp="$(mktemp -d "$cache/root.tmp.XXXXXX")"
# shellcheck disable=SC2064 # $tmp is meant to be expanded now
trap "remove_tree '$tmp'" EXIT
chmod 755 "$tmp"

kiln_info "setup-nix-current: making a Debian $suite root with Nix 2.26 in $root (once; a few minutes)"

# Every mount debootstrap and the chroot make stays in a private mount namespace: the host's
# mounts never change, and nothing stays mounted under $tmp when the namespace ends.
in_private_ns() { unshare --mount --propagation private "$@"; }

kiln_quietly "debootstrap --variant=minbase $suite (mirror from the host's apt sources: $mirror)" \
    in_private_ns debootstrap --variant=minbase "$suite" "$tmp" "$mirror"

# Services never start in the root.
printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
chmod 755 "$tmp/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$tmp/etc/resolv.conf" 2>/dev/null || true

# chroot_run CMD...: CMD in the root, with /proc, /sys and /dev, a clean environment.
chroot_run() {
    # shellcheck disable=SC2016 # expanded by the inner shell
    in_private_ns sh -c '
        root="$1"; shift
        mount -t proc proc "$root/proc" &&
        mount --rbind /sys "$root/sys" &&
        mount --rbind /dev "$root/dev" &&
        exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root DEBIAN_FRONTEND=noninteractive \
            ${http_proxy:+http_proxy="$http_proxy"} chroot "$root" "$@"
    ' sh "$tmp" "$@"
}
kiln_quietly "apt-get update (in the $suite root)" chroot_run apt-get update
kiln_quietly "apt-get install nix-bin (in the $suite root)" \
    chroot_run apt-get install -y --no-install-recommends nix-bin
kiln_quietly "apt-get clean (in the $suite root)" chroot_run apt-get clean
rm -f "$tmp/usr/sbin/policy-rc.d"

version="$(nix_version "$tmp")" ||
    kiln_die "nix-build --version failed in the new root: $version"
[[ "$version" == "nix-build (Nix) $want_version"* ]] ||
    kiln_die "Debian $suite's nix-bin is '$version', not Nix ${want_version}x: the tests that drive it expect 2.26; update scripts/setup-nix-current.sh."

# ---------------------------------------------------------------------------------------------
# 3. Nix's configuration
# ---------------------------------------------------------------------------------------------
mkdir -p "$tmp/etc/nix"
cat >"$tmp/etc/nix/nix.conf" <<'EOF'
# Written by kiln's scripts/setup-nix-current.sh. Root builds without build users (Nix 2.26
# then runs each build as an unprivileged user of its own user namespace), always in the
# sandbox, never silently without it, and with no binary cache.
build-users-group =
sandbox = true
sandbox-fallback = false
substituters =
# Nothing of the root in the sandbox unless a build asks (Debian's 2.26 maps /bin/sh to the
# root's bash-static by default; its 2.8, like kiln's tests, maps nothing).
sandbox-paths =
# nix-command: `nix log`, `nix derivation show`, `nix build -f`, `nix develop -f`.
experimental-features = nix-command
EOF

# ---------------------------------------------------------------------------------------------
# 4. The proof: a sandboxed build through scripts/nix-current
# ---------------------------------------------------------------------------------------------
# It runs the root's own /bin/sh, lent by extra-sandbox-paths (as setup.sh's check lends the
# host's); the result stays in the root's store.
# shellcheck disable=SC2016 # $NIX_BUILD_TOP and $out are for the builder's shell, not ours.
sandbox_check='derivation {
  name = "kiln-setup-nix-current-sandbox-check";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "test \"$NIX_BUILD_TOP\" = /build && test ! -e /root && echo sandboxed > \"$out\"" ];
}'
KILN_NIX_CURRENT_ROOT="$tmp" kiln_quietly "a sandboxed build with Nix 2.26 (scripts/nix-current nix-build)" \
    "$KILN_ROOT/scripts/nix-current" nix-build --no-out-link \
    --option extra-sandbox-paths "/bin /usr /lib /lib64 /etc/alternatives" -E "$sandbox_check"

# ---------------------------------------------------------------------------------------------
# 5. Into place
# ---------------------------------------------------------------------------------------------
printf '%s\n' "$version" >"$tmp/$stamp_name"
if [ -e "$root" ]; then
    # An old root that failed the checks: out of the way first (removed by the next run if the
    # removal below is interrupted).
    old="$(mktemp -d "$cache/root.old.XXXXXX")"
    mv "$root" "$old/root"
    remove_tree "$old"
fi
mv "$tmp" "$root"
trap - EXIT
root_ok "$root" || kiln_die "the new root at $root fails its own check (stamp and nix-build --version)."
