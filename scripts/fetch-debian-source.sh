#!/usr/bin/env bash
# Downloads a Debian source package (orig tarball + Debian's patches) into a cache OUTSIDE the
# repository and prints the directory holding its files. Never commit upstream sources.
#
#   bash scripts/fetch-debian-source.sh hello      # prints e.g. /root/.cache/kiln/debian-src/hello
#
# The cache is $KILN_SOURCE_CACHE (default ~/.cache/kiln/debian-src). A deb-src entry is added
# once (a copy of /etc/apt/sources.list.d/debian.sources with `Types: deb-src`). The download is
# checked: the .dsc must be there together with every file it lists; a partial download (the
# mirror lacks some files) fails loudly instead of leaving a half source package.
#
# Which version: the one scripts/debian-sources.txt pins for PACKAGE (the fixtures name its
# files), else KILN_DEBIAN_VERSION=V (with or without its epoch), else the newest the mirror
# serves whole. The mirror does not
# always carry the newest version: a fresh security update (bookworm-security) can be listed by
# `apt-get update` and still be a 404. So unpinned, every version the sources list is tried,
# newest first, and the first that downloads whole is kept; the versions skipped are named on
# stderr. A cached download of another version than the pinned one is replaced.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ $# -eq 1 ] || kiln_die "usage: fetch-debian-source.sh PACKAGE"
package="$1"
cache="${KILN_SOURCE_CACHE:-$HOME/.cache/kiln/debian-src}"
dir="$cache/$package"

# One fetch at a time, whoever calls: the first one adds the deb-src entry and runs apt-get
# update, and parallel apt-get runs fight over apt's locks (tests fetch from several threads).
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

# The pinned version (without epoch), if any; KILN_DEBIAN_VERSION pins an unlisted package.
pinned="$(awk -v want="$package" '$1 == want { print $2 }' "$KILN_ROOT/scripts/debian-sources.txt")"
if [ -z "$pinned" ] && [ -n "${KILN_DEBIAN_VERSION:-}" ]; then
    pinned="${KILN_DEBIAN_VERSION#*:}"
fi

# complete DIR: DIR holds the pinned .dsc (any .dsc when unpinned) and every file it lists.
complete() {
    local dsc
    if [ -n "$pinned" ]; then
        dsc="$1/${package}_${pinned}.dsc"
        [ -e "$dsc" ] || return 1
    else
        dsc="$(find "$1" -maxdepth 1 -name '*.dsc' 2>/dev/null | head -n 1)"
    fi
    [ -n "$dsc" ] || return 1
    # The Files: section of the .dsc lists "md5 size name" for every part.
    awk '/^Files:/{f=1;next} /^[^ ]/{f=0} f&&NF==3{print $3}' "$dsc" | while read -r part; do
        [ -s "$1/$part" ] || exit 1
    done
}

# Every version of the source package the apt sources list (one per line, any order).
source_versions() {
    apt-cache showsrc "$package" 2>/dev/null |
        awk -v want="$package" '/^Package: /{p=$2} /^Version: /&&p==want{print $2}' | sort -u
}

# The versions in $1 (whitespace-separated), newest first by Debian's own ordering (dpkg --compare-versions).
newest_first() {
    local sorted=() version i
    for version in $1; do
        i=${#sorted[@]}
        sorted+=("$version")
        while [ "$i" -gt 0 ] && dpkg --compare-versions "${sorted[i - 1]}" lt "$version"; do
            sorted[i]="${sorted[i - 1]}"
            i=$((i - 1))
        done
        sorted[i]="$version"
    done
    printf '%s\n' "${sorted[@]}"
}

if ! complete "$dir"; then
    deb_src=/etc/apt/sources.list.d/kiln-deb-src.sources
    if [ ! -e "$deb_src" ]; then
        [ -e /etc/apt/sources.list.d/debian.sources ] ||
            kiln_die "no /etc/apt/sources.list.d/debian.sources to derive a deb-src entry from"
        sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$deb_src"
        kiln_quietly "apt-get update (deb-src)" apt-get update
    fi
    command -v dpkg-source >/dev/null 2>&1 ||
        kiln_quietly "apt-get install dpkg-dev" apt-get install -y --no-install-recommends dpkg-dev
    if [ -n "$pinned" ]; then
        # apt wants the epoch the .dsc's file name leaves out.
        versions="$(source_versions | awk -v pin="$pinned" '{ v = $0; sub(/^[0-9]+:/, "", v) } v == pin')"
        [ -n "$versions" ] ||
            kiln_die "apt knows no version $pinned of '$package' (pinned in scripts/debian-sources.txt or by KILN_DEBIAN_VERSION; is the deb-src entry there?)"
    else
        versions="$(newest_first "$(source_versions)")"
    fi
    [ -n "$versions" ] || kiln_die "apt knows no source package '$package' (is the deb-src entry there? see $deb_src)"
    fetched="" last_log=""
    for version in $versions; do
        rm -rf "$dir.partial"
        mkdir -p "$dir.partial"
        log="$dir.partial.log"
        if (cd "$dir.partial" && apt-get source --download-only "$package=$version") >"$log" 2>&1 &&
            complete "$dir.partial"; then
            fetched="$version"
            rm -f "$log"
            break
        fi
        kiln_info "fetch-debian-source: $package $version did not download whole from the mirror; trying an older version"
        last_log="$(cat "$log")"
        rm -f "$log"
    done
    if [ -z "$fetched" ]; then
        rm -rf "$dir.partial"
        printf '%s\n' "----- output of the last try -----" "$last_log" "-----" >&2
        kiln_die "no version of the source package '$package' downloaded whole (tried: $(echo $versions)); pick another package"
    fi
    rm -rf "$dir"
    mv "$dir.partial" "$dir"
fi
printf '%s\n' "$dir"
