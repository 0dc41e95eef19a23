#!/usr/bin/env bash
# Benchmark: kiln's stage-0 store toolchain (bootstrap/stage0) under real sandboxed Nix.
#
#   stage 0      building the runtime and the toolchain from the cached .debs (unpack 55
#                packages, patch ~770 ELF files, gcc's specs, the check phase), timed with
#                `nix-build --check`, which rebuilds both and also proves them bit-identical
#   hello/store  GNU hello from Debian's source package (autotools preset, with make check)
#                built with the stage-0 toolchain, nothing of the host lent
#   hello/host   the same with the host's toolchain lent by extra-sandbox-paths (the old way)
#
# Each hello build gets a fresh nonce, so Nix really builds. Runs RUNS times (default 3) and
# reports medians, and the store/host ratio (goal: at most 1.10).
#
#   bash scripts/bench-toolchain.sh [RUNS]
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$KILN_ROOT"

runs="${1:-3}"
bash scripts/setup.sh
kiln="$(bash scripts/build-static.sh | tail -n 1)"
sources="$(bash scripts/fetch-debian-source.sh hello)"
bash scripts/fetch-stage0-debs.sh >/dev/null
kiln_pure_opts "$kiln" # builds the stage-0 toolchain once, if it is not built yet

now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# stage0: ms to rebuild the runtime and the toolchain (nix-build --check of both).
stage0() {
    local start end
    start=$(now)
    nix-build --check --no-out-link "${KILN_NIX_PURE_OPTS[@]}" \
        -E "let s = import ./bootstrap/stage0 { kiln = $kiln; }; in [ s.runtime s.toolchain ]" \
        >/dev/null 2>&1 || kiln_die "nix-build --check of the stage-0 toolchain failed (not reproducible?)"
    end=$(now)
    echo $(((end - start) / 1000000))
}

# hello STAGE0: ms for one fresh build of Debian's hello, with the store toolchain (true) or
# the host's (false).
hello() {
    local start end options
    if [ "$1" = true ]; then options=("${KILN_NIX_PURE_OPTS[@]}"); else options=("${KILN_NIX_HOST_OPTS[@]}"); fi
    start=$(now)
    nix-build tests/fixtures/debian/hello.nix --arg kiln "$kiln" --arg debianSrc "$sources" \
        --arg stage0 "$1" --argstr nonce "bench-toolchain-$1-$(now)" "${options[@]}" \
        --no-out-link >/dev/null 2>&1 || kiln_die "nix-build of hello (stage0 = $1) failed"
    end=$(now)
    echo $(((end - start) / 1000000))
}

declare -A times
for what in stage0 "hello true" "hello false"; do
    samples=""
    for _ in $(seq "$runs"); do
        # shellcheck disable=SC2086 # the function name and its argument
        samples+="$($what)"$'\n'
    done
    times[$what]="$(printf '%s' "$samples" | median)"
done

store=${times[hello true]}
host=${times[hello false]}
printf '\nstage-0 toolchain under sandboxed Nix (median of %s runs, wall ms)\n' "$runs"
printf '  %-44s %8s\n' "build runtime + toolchain from cached .debs" "${times[stage0]}"
printf '  %-44s %8s\n' "GNU hello, store toolchain (nothing lent)" "$store"
printf '  %-44s %8s\n' "GNU hello, host toolchain (extra-sandbox-paths)" "$host"
awk -v s="$store" -v h="$host" 'BEGIN { printf "  store/host ratio for hello: %.2f (goal: at most 1.10)\n", s / h }'
