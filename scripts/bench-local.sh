#!/usr/bin/env bash
# Benchmark: local mode's resume on GNU hello (Debian source, autotools preset), without Nix at
# build time. The plan is the one tests/fixtures/debian/hello.nix gives Nix (read with
# nix-instantiate), with its `check` phase replaced by a quick test of the built program.
#
#   full     `kiln build PLAN` from scratch (fresh cache): every phase, a state cached after each
#   resume   `kiln build PLAN --from check`: restores the state after `build`, runs check,
#            install and fixup
#   nix      `nix-build` of the same plan (one derivation), what a user re-runs without kiln's
#            local mode
#
# Prints the medians of RUNS runs (default 3) and resume/full and resume/nix ratios. The
# sandbox lends the host toolchain (IMPURE, like the tests).
#
#   bash scripts/bench-local.sh [RUNS]
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$KILN_ROOT"

runs="${1:-3}"
bash scripts/setup.sh
kiln="$(bash scripts/build-static.sh | tail -n 1)"
sources="$(bash scripts/fetch-debian-source.sh hello)"
work="$(mktemp -d)"
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT

# The plan as Nix would build it; `--read-write-mode` puts the sources into the store.
# It uses the host's toolchain (`stage0 = false`), lent by KILN_LEND below: this benchmark measures
# local mode's phase cache, not the toolchain (scripts/bench-toolchain.sh does).
nix-instantiate --eval --strict --json --read-write-mode tests/fixtures/debian/hello.nix -A kiln \
    --arg kiln "$kiln" --arg debianSrc "$sources" --arg stage0 false >"$work/hello.json" ||
    kiln_die "cannot evaluate the hello plan"
# Its check: does the program greet? (hello's own suite would dominate the resumed run.)
python3 - "$work/hello.json" <<'PY'
import json, sys
path = sys.argv[1]
plan = json.load(open(path))
plan["edits"] = [{"replace": {"phase": "check", "with": {
    "name": "check", "steps": [{"run": {"argv": ["sh", "-c", "./hello | grep -q 'Hello, world'"]}}]}}}]
json.dump(plan, open(path, "w"))
PY

export KILN_LEND="/bin:/usr:/lib:/lib64:/etc/alternatives"
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

full="" resume="" nix=""
for run in $(seq "$runs"); do
    cache="$work/cache-$run"
    start=$(now)
    "$kiln" build "$work/hello.json" --cache-dir "$cache" --out-dir "$work/full-$run" \
        --log-format json 2>"$work/full.log" || { cat "$work/full.log"; kiln_die "full build failed"; }
    full+="$((($(now) - start) / 1000000))"$'\n'

    # The same output paths (they are part of the cache key): the first result makes way.
    chmod -R u+w "$work/full-$run" && rm -rf "$work/full-$run"
    start=$(now)
    "$kiln" build "$work/hello.json" --cache-dir "$cache" --out-dir "$work/full-$run" \
        --from check --log-format json 2>"$work/resume.log" ||
        { cat "$work/resume.log"; kiln_die "resumed build failed"; }
    resume+="$((($(now) - start) / 1000000))"$'\n'
    [ "$("$work/full-$run/out/bin/hello")" = "Hello, world!" ] || kiln_die "the resumed hello does not greet"

    start=$(now)
    nix-build tests/fixtures/debian/hello.nix --arg kiln "$kiln" --arg debianSrc "$sources" \
        --arg stage0 false --argstr nonce "bench-local-$(now)" "${KILN_NIX_HOST_OPTS[@]}" --no-out-link >/dev/null 2>&1 ||
        kiln_die "nix-build failed"
    nix+="$((($(now) - start) / 1000000))"$'\n'
done

full_ms="$(printf '%s' "$full" | median)"
resume_ms="$(printf '%s' "$resume" | median)"
nix_ms="$(printf '%s' "$nix" | median)"
printf '\nGNU hello 2.10, median of %s runs (ms)\n' "$runs"
printf '%-52s %8s\n' "kiln build (full, fresh cache)" "$full_ms"
printf '%-52s %8s\n' "kiln build --from check (cached states)" "$resume_ms"
printf '%-52s %8s\n' "nix-build of the same plan (one derivation)" "$nix_ms"
awk -v r="$resume_ms" -v f="$full_ms" -v n="$nix_ms" 'BEGIN {
    printf "resume / full build: %.1f %%   resume / nix-build: %.1f %%\n", 100 * r / f, 100 * r / n }'
