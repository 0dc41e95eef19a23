#!/usr/bin/env bash
# The main job, from a fresh machine: set up, build the static kiln, build a real C program
# (tests/fixtures/hello-c) with kiln as the derivation's builder in Nix's sandbox, and run it.
#
#   bash scripts/example.sh
#
# IMPURE: the example compiles with the HOST's gcc, lent to the sandbox through
# extra-sandbox-paths (see KILN_NIX_OPTS in scripts/lib.sh); kiln itself needs nothing from the
# host. Every run rebuilds (a fresh `nonce`), so you see kiln's phases each time.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$KILN_ROOT"

kiln_info "==> set-up (scripts/setup.sh)"
bash scripts/setup.sh

kiln_info "==> building the static kiln (scripts/build-static.sh)"
kiln="$(bash scripts/build-static.sh | tail -n 1)"
kiln_info "kiln: $kiln"

kiln_info "==> nix-build tests/fixtures/hello-c, with kiln as the builder"
nix-build tests/fixtures/hello-c \
    --arg kiln "$kiln" \
    --argstr nonce "$(date +%s.%N)" \
    --out-link result \
    "${KILN_NIX_OPTS[@]}" ||
    kiln_die "nix-build tests/fixtures/hello-c failed (the build log is above)."

kiln_info "==> running ./result/bin/hello-kiln"
./result/bin/hello-kiln
