#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set-up (Nix 2.8 on the host, Nix 2.26 in a trixie
# root), formatting, lints, the static kiln (which the Nix integration tests use), then every
# crate's tests. Every check runs even when an earlier one failed (except set-up); the summary
# at the end says which failed, and the exit status is non-zero if any did.
#
#   bash scripts/test.sh
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$KILN_ROOT"

summary=()
failed=0

# run_step NAME CMD...: runs CMD with its output shown, and records how it went.
run_step() {
    local name="$1" start status=0
    shift
    kiln_info ""
    kiln_info "==> $name"
    start=$SECONDS
    "$@" || status=$?
    if [ "$status" -eq 0 ]; then
        summary+=("  ok      $name ($((SECONDS - start))s)")
    else
        summary+=("  FAILED  $name (exit status $status, $((SECONDS - start))s)")
        failed=$((failed + 1))
    fi
}

kiln_info "==> set-up (scripts/setup.sh)"
bash scripts/setup.sh
# The current Nix (2.26) in a Debian trixie root, for the tests that drive it through
# scripts/nix-current: made once (a minute or so), then cached outside the repository.
kiln_info "==> set-up of the current Nix (scripts/setup-nix-current.sh)"
bash scripts/setup-nix-current.sh

run_step "cargo fmt --all -- --check" cargo fmt --all -- --check
run_step "cargo clippy --workspace --all-targets -- -D warnings" \
    cargo clippy --workspace --all-targets -- -D warnings
# The module docs are the map for the next person (docs/architecture.md): broken links fail.
run_step "cargo doc --no-deps --workspace (warnings are errors)" \
    env RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace

# The Nix integration tests run this binary as a derivation's builder; they read its path from
# KILN_STATIC_BIN.
build_static() {
    local out
    out="$(bash scripts/build-static.sh)" || return $?
    KILN_STATIC_BIN="$(printf '%s\n' "$out" | tail -n 1)"
    export KILN_STATIC_BIN
    kiln_info "KILN_STATIC_BIN=$KILN_STATIC_BIN"
}
run_step "static kiln (scripts/build-static.sh)" build_static

run_step "cargo test --workspace --no-fail-fast" cargo test --workspace --no-fail-fast

kiln_info ""
kiln_info "==> summary"
for line in "${summary[@]}"; do
    kiln_info "$line"
done
if [ "$failed" -ne 0 ]; then
    kiln_info "summary: $failed of ${#summary[@]} checks FAILED"
    exit 1
fi
kiln_info "summary: all ${#summary[@]} checks ok"
