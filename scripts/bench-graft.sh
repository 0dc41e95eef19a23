#!/usr/bin/env bash
# Benchmark: grafting a closure, kiln's way against nixpkgs' way, and against rebuilding.
#
# The closure (tests/fixtures/graft/bench.nix): 20 chained store paths of 26 MB each (random
# bytes and a text file naming libgreet and the path before), all depending on libgreet.
# Measured on this machine, once each:
#   kiln graft (Nix)   nix-build -A grafted: the references graph, the fixed libgreet and 20
#                      graft derivations, each one kiln `graft` step (parallel over files,
#                      checked afterwards)
#   nixpkgs' way       what build-support/replace-dependency.nix does per store path, outside
#                      Nix: `nix-store --dump PATH | sed 's|OLD|NEW|g' | nix-store --restore`,
#                      one path at a time (no check)
#   kiln graft (local) the same 20 copies as one local plan of `graft` steps (kiln build
#                      --no-sandbox), outside Nix, like the line above
#   rebuild            the 20 paths built again (nix-build -A top with a new nonce)
# and, on tests/fixtures/graft, grafting graft-app and libmid against rebuilding them with gcc.
#
#   bash scripts/bench-graft.sh
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$KILN_ROOT"

bash scripts/setup.sh
kiln="$(bash scripts/build-static.sh | tail -n 1)"
bash scripts/fetch-stage0-debs.sh >/dev/null
kiln_pure_opts "$kiln"
nonce="bench-graft-$(date +%s%N)"
scratch="$(mktemp -d)"
trap 'chmod -R u+w "$scratch" 2>/dev/null; rm -rf "$scratch"' EXIT

ms() { echo $(((${2} - ${1}) / 1000000)); }
nixb() { nix-build "$@" --arg kiln "$kiln" "${KILN_NIX_PURE_OPTS[@]}" --no-out-link 2>>"$scratch/log"; }

kiln_info "bench-graft: building the closure (20 x 26 MB)"
top="$(nixb tests/fixtures/graft/bench.nix -A top --argstr nonce "$nonce" | tail -n 1)" ||
    kiln_die "building the closure failed: $(tail -n 20 "$scratch/log")"
mapfile -t closure < <(nix-store -qR "$top" | grep -- '-bulk-')
old="$(nix-build tests/fixtures/graft/bench.nix -A libgreet --arg kiln "$kiln" --argstr nonce "$nonce" "${KILN_NIX_PURE_OPTS[@]}" --no-out-link 2>/dev/null | tail -n 1)"
new="$(nixb tests/fixtures/graft/bench.nix -A libgreetFixed --argstr nonce "$nonce" | tail -n 1)"
size=$(du -sbc "${closure[@]}" | tail -n 1 | cut -f1)
kiln_info "bench-graft: ${#closure[@]} paths, $((size / 1000000)) MB"

# nixpkgs' way, per path, one at a time. Both ways replace libgreet only (the chain's other
# references would be grafted paths in a real graft; the bytes scanned are the same).
start=$(date +%s%N)
i=0
for path in "${closure[@]}"; do
    i=$((i + 1))
    base_old="$(basename "$old")" base_new="$(basename "$new")"
    nix-store --dump "$path" | sed "s|$base_old|$base_new|g" |
        nix-store --restore "$scratch/sed-$i"
done
end=$(date +%s%N)
sed_ms=$(ms "$start" "$end")

# kiln's graft step, the same copies, as one local plan.
{
    echo '{"version": 1, "name": "bench-graft", "phases": [{"name": "graft", "steps": ['
    i=0
    for path in "${closure[@]}"; do
        i=$((i + 1))
        [ "$i" -gt 1 ] && echo ','
        printf '{"graft": {"from": "%s", "to": "${outputs.out}/%s", "replace": {"%s": "%s"}}}' \
            "$path" "$i" "$old" "$new"
    done
    echo ']}]}'
} >"$scratch/plan.json"
start=$(date +%s%N)
"$kiln" build "$scratch/plan.json" --no-sandbox --out-dir "$scratch/out" --no-cache >/dev/null 2>>"$scratch/log" ||
    kiln_die "kiln build of the graft plan failed: $(tail -n 20 "$scratch/log")"
end=$(date +%s%N)
kiln_local_ms=$(ms "$start" "$end")

# kiln's graft under Nix: the whole replaceDependencies.
start=$(date +%s%N)
nixb tests/fixtures/graft/bench.nix -A grafted --argstr nonce "$nonce" >/dev/null ||
    kiln_die "nix-build -A grafted failed: $(tail -n 20 "$scratch/log")"
end=$(date +%s%N)
kiln_nix_ms=$(ms "$start" "$end")

# Rebuilding the 20 paths.
start=$(date +%s%N)
nixb tests/fixtures/graft/bench.nix -A top --argstr nonce "$nonce-rebuild" >/dev/null
end=$(date +%s%N)
rebuild_ms=$(ms "$start" "$end")

# The fixture's program and library: graft against rebuild with gcc.
nixb tests/fixtures/graft -A app --argstr nonce "$nonce" >/dev/null
start=$(date +%s%N)
nixb tests/fixtures/graft -A grafted --argstr nonce "$nonce" >/dev/null
end=$(date +%s%N)
small_graft_ms=$(ms "$start" "$end")
start=$(date +%s%N)
nixb tests/fixtures/graft -A app --argstr nonce "$nonce-rebuild" >/dev/null
end=$(date +%s%N)
small_rebuild_ms=$(ms "$start" "$end")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
cat <<REPORT
graft of ${#closure[@]} store paths, $((size / 1000000)) MB (this machine, one run each)
  nixpkgs' way (nix-store --dump | sed | --restore, per path): ${sed_ms} ms
  kiln graft steps, local (one plan, parallel, checked):       ${kiln_local_ms} ms   ratio kiln/nixpkgs $(ratio "$kiln_local_ms" "$sed_ms")
  kiln replaceDependencies under Nix (graph + 21 derivations): ${kiln_nix_ms} ms
  rebuilding the 20 paths under Nix:                           ${rebuild_ms} ms   ratio graft/rebuild $(ratio "$kiln_nix_ms" "$rebuild_ms")
graft-app and libmid (tests/fixtures/graft), under Nix:
  replaceDependencies (graph, libgreet 1.1, 3 grafts):        ${small_graft_ms} ms
  rebuilding libgreet, libmid and graft-app with gcc:          ${small_rebuild_ms} ms   ratio graft/rebuild $(ratio "$small_graft_ms" "$small_rebuild_ms")
REPORT
