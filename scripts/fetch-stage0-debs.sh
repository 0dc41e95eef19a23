#!/usr/bin/env bash
# Downloads the Debian binary packages of kiln's stage-0 toolchain, pinned in
# bootstrap/stage0/debs.lock, into a cache OUTSIDE the repository, checks each against the
# lock's sha256, and adds each to the Nix store as a fixed-output path
# (`nix-store --add-fixed sha256`), which is how bootstrap/stage0 finds them: by name and hash,
# like nixpkgs' requireFile. Prints the cache directory. Never commit the .deb files.
#
#   bash scripts/fetch-stage0-debs.sh            # every set in the lock
#   bash scripts/fetch-stage0-debs.sh core       # only the sets named
#   bash scripts/fetch-stage0-debs.sh --relock   # re-pin the lock to what apt serves now
#
# The files come from apt's ordinary client (`apt-get download PACKAGE=VERSION`) and the
# host's apt sources; no address is written here. The cache is $KILN_DEB_CACHE (default
# ~/.cache/kiln/debs); a file already there with the right hash is not fetched again, and a
# path already in the store is not added again, so a second run only hashes.
#
# Store names: a .deb's store name is `PACKAGE_VERSION_ARCH.deb` with the epoch left out and
# `~` written `_` (store names may not hold `~` or `:`); bootstrap/stage0 computes the same.
#
# --relock rewrites the version and sha256 columns of every line from `apt-cache show` (the
# candidate version apt would install), keeping the set and package columns and the comments.
# Run it when the mirror no longer serves a pinned version (a Debian point release replaced
# it): the download then fails naming this option. Commit the new lock.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lock="$KILN_ROOT/bootstrap/stage0/debs.lock"
cache="${KILN_DEB_CACHE:-$HOME/.cache/kiln/debs}"
[ -f "$lock" ] || kiln_die "no lock file at $lock"

# The lock's entries: `set package version arch sha256`, comments and blank lines skipped.
entries() { awk '!/^[[:space:]]*(#|$)/ { print $1, $2, $3, $4, $5 }' "$lock"; }

store_name() { # VERSION-less epoch, ~ as _: store_name PACKAGE VERSION ARCH
    local version="${2#*:}"
    printf '%s_%s_%s.deb\n' "$1" "${version//\~/_}" "$3"
}

# apt_updated: runs `apt-get update` once per run (the lists may be missing or stale).
updated=""
apt_updated() {
    [ -n "$updated" ] && return 0
    kiln_quietly "apt-get update" apt-get update
    updated=1
}

relock() {
    local tmp set package version arch sha line
    tmp="$(mktemp "$lock.XXXXXX")"
    # shellcheck disable=SC2064 # $tmp is meant to be expanded now
    trap "rm -f '$tmp'" EXIT
    apt_updated
    while IFS= read -r line; do
        if [[ "$line" =~ ^[[:space:]]*(#|$) ]]; then
            printf '%s\n' "$line"
            continue
        fi
        read -r set package _ <<<"$line"
        # The candidate's stanza: Version, Architecture and SHA256 of the .deb apt would fetch.
        read -r version arch sha < <(apt-cache show --no-all-versions "$package" 2>/dev/null |
            awk '/^Version: /{v=$2} /^Architecture: /{a=$2} /^SHA256: /{s=$2} END{print v, a, s}') || true
        [ -n "${sha:-}" ] || kiln_die "apt-cache knows no package '$package' (line: $line)"
        printf '%-8s %-26s %-20s %-6s %s\n' "$set" "$package" "$version" "$arch" "$sha"
    done <"$lock" >"$tmp"
    mv "$tmp" "$lock"
    kiln_info "fetch-stage0-debs: re-pinned $(entries | wc -l) packages in $lock"
}

if [ "${1:-}" = "--relock" ]; then
    relock
    exit 0
fi

want=("$@")
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
command -v nix-store >/dev/null 2>&1 || kiln_die "nix-store is missing: run scripts/setup.sh first"

count=0
while read -r set package version arch sha; do
    if [ "${#want[@]}" -gt 0 ] && [[ " ${want[*]} " != *" $set "* ]]; then
        continue
    fi
    [[ "$sha" =~ ^[0-9a-f]{64}$ ]] || kiln_die "$lock: $package has no sha256 (run --relock)"
    name="$(store_name "$package" "$version" "$arch")"
    file="$cache/$name"
    if [ ! -f "$file" ] || [ "$(sha256sum "$file" | cut -d' ' -f1)" != "$sha" ]; then
        rm -f "$file"
        work="$(mktemp -d "$cache/.download.XXXXXX")"
        fetch() { (cd "$work" && apt-get download "$package=$version") >"$work/log" 2>&1; }
        if ! fetch; then
            apt_updated
            fetch || {
                cat "$work/log" >&2
                rm -rf "$work"
                kiln_die "apt-get download $package=$version failed: the mirror may no longer serve the pinned version; run \`bash scripts/fetch-stage0-debs.sh --relock\` and commit bootstrap/stage0/debs.lock"
            }
        fi
        got="$(find "$work" -maxdepth 1 -name '*.deb' | head -n 1)"
        [ -n "$got" ] || kiln_die "apt-get download $package=$version gave no .deb"
        actual="$(sha256sum "$got" | cut -d' ' -f1)"
        if [ "$actual" != "$sha" ]; then
            rm -rf "$work"
            kiln_die "$package $version: the mirror's .deb has sha256 $actual, the lock says $sha (a changed mirror? re-pin with --relock and review)"
        fi
        mv "$got" "$file"
        rm -rf "$work"
    fi
    # nix-store --add-fixed is idempotent, but hashes the file again; skip a path already valid.
    expected_path="$(nix-store --print-fixed-path sha256 "$sha" "$name" 2>/dev/null || true)"
    if [ -z "$expected_path" ] || ! nix-store --check-validity "$expected_path" 2>/dev/null; then
        added="$(nix-store --add-fixed sha256 "$file")" || kiln_die "nix-store --add-fixed sha256 $file failed"
        [ -z "$expected_path" ] || [ "$added" = "$expected_path" ] ||
            kiln_die "nix-store --add-fixed gave $added, expected $expected_path"
    fi
    count=$((count + 1))
done < <(entries)
[ "$count" -gt 0 ] || kiln_die "no package of the sets '${want[*]}' in $lock"
kiln_info "fetch-stage0-debs: $count packages in the store (cache: $cache)"
printf '%s\n' "$cache"
