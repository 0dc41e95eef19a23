#!/usr/bin/env bash
# Builds kiln as a fully static binary (it runs inside Nix's sandbox, where no host library
# exists) and prints its absolute path as the last line of stdout. Cargo's progress goes to
# stderr. Fails loudly when the result is not statically linked.
#
# The static build has its own target directory (target/static) so it does not invalidate the
# ordinary debug build's cache (different RUSTFLAGS).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "$KILN_ROOT"

cargo_flags=(--release --target "$KILN_TARGET" --target-dir "$KILN_STATIC_DIR" -p kiln)

if ! RUSTFLAGS='-C target-feature=+crt-static' cargo build "${cargo_flags[@]}" >&2; then
    kiln_die "the static build of kiln failed: RUSTFLAGS='-C target-feature=+crt-static' cargo build ${cargo_flags[*]}"
fi

[ -x "$KILN_STATIC_PATH" ] || kiln_die "cargo succeeded but $KILN_STATIC_PATH is not there (or not executable)."

# `file` says "statically linked" (or "static-pie linked"); ldd says "not a dynamic executable"
# (or "statically linked"). Either check must agree the binary needs no loader.
kind="$(file -L "$KILN_STATIC_PATH")"
case "$kind" in
*"statically linked"* | *"static-pie linked"*) ;;
*) kiln_die "$KILN_STATIC_PATH is not static. file says: $kind" ;;
esac
if ldd_out="$(ldd "$KILN_STATIC_PATH" 2>&1)"; then
    case "$ldd_out" in
    *"statically linked"* | *"not a dynamic executable"*) ;;
    *) kiln_die "$KILN_STATIC_PATH is not static. ldd says: $ldd_out" ;;
    esac
fi

printf '%s\n' "$KILN_STATIC_PATH"
