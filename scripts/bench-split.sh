#!/usr/bin/env bash
# Benchmark: the cost of split mode's phase boundaries on GNU hello (Debian source, autotools
# preset), under real sandboxed Nix. Builds, each with a fresh nonce so Nix really builds:
#   plain       mkDerivation: one derivation, real output path
#   monolithic  one derivation through the placeholder pipeline (mkSplit with one group)
#   split       one derivation per phase: 5 stages + the final one (6 boundaries' worth of
#               restore/pack, plus 5 extra Nix derivation set-ups)
# and prints wall times, the split/monolithic ratio and the cost per boundary. Runs RUNS times
# (default 3) and reports medians.
#
#   bash scripts/bench-split.sh [RUNS]
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$KILN_ROOT"

runs="${1:-3}"
bash scripts/setup.sh
kiln="$(bash scripts/build-static.sh | tail -n 1)"
sources="$(bash scripts/fetch-debian-source.sh hello)"
bash scripts/fetch-stage0-debs.sh >/dev/null
kiln_pure_opts "$kiln" # the fixtures build with the stage-0 toolchain; /bin/sh is its dash

# build ATTR: prints the wall time of one fresh build in milliseconds.
build() {
    local attr="$1" start end
    start=$(date +%s%N)
    nix-build tests/fixtures/split/hello.nix -A "$attr" --arg kiln "$kiln" \
        --arg debianSrc "$sources" --argstr nonce "bench-$attr-$(date +%s%N)" \
        "${KILN_NIX_PURE_OPTS[@]}" --no-out-link >/dev/null 2>&1 ||
        kiln_die "nix-build -A $attr failed"
    end=$(date +%s%N)
    echo $(((end - start) / 1000000))
}

# trivial: a one-step kiln derivation, for Nix's own fixed cost per derivation.
trivial() {
    local start end
    start=$(date +%s%N)
    nix-build tests/fixtures/trivial --arg kiln "$kiln" --argstr nonce "bench-trivial-$(date +%s%N)" \
        "${KILN_NIX_PURE_OPTS[@]}" --no-out-link >/dev/null 2>&1 || kiln_die "nix-build of the trivial fixture failed"
    end=$(date +%s%N)
    echo $(((end - start) / 1000000))
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A times
for attr in plain monolithic split; do
    samples=""
    for _ in $(seq "$runs"); do
        samples+="$(build "$attr")"$'\n'
    done
    times[$attr]="$(printf '%s' "$samples" | median)"
done

samples=""
for _ in $(seq "$runs"); do
    samples+="$(trivial)"$'\n'
done
times[trivial]="$(printf '%s' "$samples" | median)"

boundaries=5
printf 'GNU hello 2.10 under sandboxed Nix, median of %s fresh builds each\n' "$runs"
printf '  %-44s %8s ms\n' "plain (mkDerivation, real path)" "${times[plain]}"
printf '  %-44s %8s ms\n' "monolithic (one derivation, placeholder)" "${times[monolithic]}"
printf '  %-44s %8s ms\n' "split (6 derivations, 5 state boundaries)" "${times[split]}"
awk -v s="${times[split]}" -v m="${times[monolithic]}" -v b="$boundaries" 'BEGIN {
    printf "  split / monolithic: %.2fx; cost per boundary: %.0f ms (goal: under 100 ms)\n", s / m, (s - m) / b
}'
printf '  %-44s %8s ms\n' "a trivial kiln derivation (Nix's fixed cost)" "${times[trivial]}"
awk -v s="${times[split]}" -v m="${times[monolithic]}" -v b="$boundaries" -v t="${times[trivial]}" 'BEGIN {
    printf "  per boundary minus the per-derivation cost of Nix: %.0f ms\n", (s - m) / b - t
}'
echo "  (plain also runs the test suite: doCheck; monolithic and split do not: split runs it in its own derivation)"
