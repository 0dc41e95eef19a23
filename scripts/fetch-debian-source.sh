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
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ $# -eq 1 ] || kiln_die "usage: fetch-debian-source.sh PACKAGE"
package="$1"
cache="${KILN_SOURCE_CACHE:-$HOME/.cache/kiln/debian-src}"
dir="$cache/$package"

complete() {
    local dsc
    dsc="$(find "$dir" -maxdepth 1 -name '*.dsc' 2>/dev/null | head -n 1)"
    [ -n "$dsc" ] || return 1
    # The Files: section of the .dsc lists "md5 size name" for every part.
    awk '/^Files:/{f=1;next} /^[^ ]/{f=0} f&&NF==3{print $3}' "$dsc" | while read -r part; do
        [ -s "$dir/$part" ] || exit 1
    done
}

if ! complete; then
    deb_src=/etc/apt/sources.list.d/kiln-deb-src.sources
    if [ ! -e "$deb_src" ]; then
        [ -e /etc/apt/sources.list.d/debian.sources ] ||
            kiln_die "no /etc/apt/sources.list.d/debian.sources to derive a deb-src entry from"
        sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$deb_src"
        kiln_quietly "apt-get update (deb-src)" apt-get update
    fi
    command -v dpkg-source >/dev/null 2>&1 ||
        kiln_quietly "apt-get install dpkg-dev" apt-get install -y --no-install-recommends dpkg-dev
    rm -rf "$dir.partial"
    mkdir -p "$dir.partial"
    (cd "$dir.partial" && kiln_quietly "apt-get source --download-only $package" \
        apt-get source --download-only "$package")
    rm -rf "$dir"
    mv "$dir.partial" "$dir"
    complete || kiln_die "the source package '$package' did not download whole (see $dir); pick another package"
fi
printf '%s\n' "$dir"
