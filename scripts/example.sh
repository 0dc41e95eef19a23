#!/usr/bin/env bash
# The main job, from a fresh machine: set up, build the static kiln, build a real C program
# (tests/fixtures/hello-c) with kiln as the derivation's builder in Nix's sandbox, and run it.
#
#   bash scripts/example.sh
#
# Nothing of the host is lent to the sandbox (KILN_NIX_PURE_OPTS in scripts/lib.sh): the
# program is compiled by kiln's stage-0 toolchain (bootstrap/stage0), which kiln itself builds
# in the store from pinned Debian packages (downloaded once by scripts/fetch-stage0-debs.sh).
# Every run rebuilds the program (a fresh `nonce`), so you see kiln's phases each time; the
# toolchain is built once.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$KILN_ROOT"

kiln_info "==> set-up (scripts/setup.sh)"
bash scripts/setup.sh

kiln_info "==> building the static kiln (scripts/build-static.sh)"
kiln="$(bash scripts/build-static.sh | tail -n 1)"
kiln_info "kiln: $kiln"

kiln_info "==> the stage-0 toolchain: its Debian packages (scripts/fetch-stage0-debs.sh), then kiln builds it"
bash scripts/fetch-stage0-debs.sh >/dev/null
kiln_pure_opts "$kiln"

kiln_info "==> nix-build tests/fixtures/hello-c, with kiln as the builder, nothing of the host lent"
nix-build tests/fixtures/hello-c \
    --arg kiln "$kiln" \
    --argstr nonce "$(date +%s.%N)" \
    --out-link result \
    "${KILN_NIX_PURE_OPTS[@]}" ||
    kiln_die "nix-build tests/fixtures/hello-c failed (the build log is above)."

kiln_info "==> running ./result/bin/hello-kiln"
./result/bin/hello-kiln
