#!/usr/bin/env bash
# Builds the static kiln (scripts/build-static.sh) and adds it to the Nix store as a directory
# with bin/kiln, the usual package layout. Prints the store path as the last line of stdout:
#
#   kiln=$(bash scripts/store-add.sh)     # /nix/store/<hash>-kiln, with bin/kiln inside
#   nix-build FILE --argstr kiln "$kiln"   # bootstrap/default.nix accepts this or the bare file
#
# The store path is content-addressed, so the same binary always gives the same path.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bin="$(bash "$KILN_ROOT/scripts/build-static.sh" | tail -n 1)"
[ -x "$bin" ] || kiln_die "build-static.sh did not print an executable path (got '$bin')."

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/kiln/bin"
cp "$bin" "$tmp/kiln/bin/kiln"
chmod 0555 "$tmp/kiln/bin/kiln"

store_path="$(nix-store --add "$tmp/kiln")" || kiln_die "nix-store --add $tmp/kiln failed."
[ -x "$store_path/bin/kiln" ] || kiln_die "nix-store --add gave $store_path, which has no executable bin/kiln."
printf '%s\n' "$store_path"
