#!/usr/bin/env bash
# Coverage-guided fuzzing of kiln's parsers with cargo-fuzz (libFuzzer), one target at a time
# on one core.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
#   SECONDS_PER_TARGET  wall-clock seconds of fuzzing per target (default 240)
#   TARGET              plan, attrs, archive, patch, state, elf (default: all)
#
# Each target runs `cargo +nightly fuzz run` with `-jobs=1 -workers=1` over fuzz/corpus/TARGET
# with the dictionary fuzz/dicts/TARGET.dict. libFuzzer stops at the first crash; the script
# then starts it again until the time is used up (at most MAX_CRASHES crashes per target), so a
# crash does not end the session. Crash, timeout and out-of-memory inputs are kept under
# fuzz/artifacts/TARGET/ (the replay test `cargo test -p kiln-fuzz-harness` runs them: move an
# input that crashes a crate you cannot fix to fuzz/open-crashes/TARGET/). Afterwards the corpus
# is minimised (`cargo fuzz cmin` with a set cover of the edges).
#
# Prints a table per target (CPU seconds, executions, edges `cov:`, features `ft:`, corpus
# size, crashes) and appends the same numbers to fuzz/RUNS.md, a log across sessions; the
# table's last column adds up the CPU minutes of every session in the log.
#
# FUZZ_FORK=1 runs libFuzzer's fork mode (`-fork=1`, still one process at a time) with crashes,
# timeouts and out-of-memory inputs ignored: fuzzing goes on past a crash that is known but not
# fixed yet, and every crash input still lands in fuzz/artifacts/TARGET/.
#
# Environment: MAX_CRASHES (default 3), FUZZ_ARGS (extra libFuzzer flags), SKIP_CMIN=1,
# FUZZ_COMMIT (the commit recorded in RUNS.md, when fuzzing a copy of the tree without .git).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
fuzz=$repo/fuzz
seconds=${1:-240}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(plan attrs archive patch state elf)
max_crashes=${MAX_CRASHES:-3}

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz is missing: cargo +nightly install cargo-fuzz" >&2
  exit 2
fi

# The longest input libFuzzer makes, per target: room for a small tree or archive, no more.
max_len() {
  case $1 in
    archive | state) echo 32768 ;;
    elf) echo 20000 ;;
    *) echo 4096 ;;
  esac
}

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

echo "fuzz.sh: building the fuzz targets" >&2
(cd "$fuzz" && cargo +nightly fuzz build >"$logs/build.log" 2>&1) || {
  tail -30 "$logs/build.log" >&2
  exit 1
}

count_crashes() {
  find "$fuzz/artifacts/$1" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' \
    -o -name 'oom-*' -o -name 'leak-*' \) 2>/dev/null | wc -l
}

# The value of FIELD in the last libFuzzer status line of LOG that has it: `last_stat cov LOG`.
last_stat() {
  local value
  value=$(grep -aoE "(^|[^a-z])$1: [0-9]+" "$2" 2>/dev/null | tail -1 | grep -oE '[0-9]+$' || true)
  echo "${value:-0}"
}

row_file=$logs/rows
: >"$row_file"
failed=0
for target in "${targets[@]}"; do
  if [ ! -f "$fuzz/fuzz_targets/$target.rs" ]; then
    echo "fuzz.sh: no target \`$target\`" >&2
    exit 2
  fi
  mkdir -p "$fuzz/corpus/$target" "$fuzz/artifacts/$target"
  crashes_before=$(count_crashes "$target")
  extra=()
  [ -f "$fuzz/dicts/$target.dict" ] && extra+=("-dict=$fuzz/dicts/$target.dict")
  [ "${FUZZ_FORK:-}" != 1 ] || extra+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  started=$(date +%s)
  cpu=0
  execs=0
  cov=0
  ft=0
  runs=0
  log=$logs/$target.log
  : >"$log"
  while :; do
    elapsed=$(($(date +%s) - started))
    left=$((seconds - elapsed))
    [ "$left" -ge 5 ] || break
    runs=$((runs + 1))
    work=$logs/$target.$runs
    mkdir -p "$work"
    # libFuzzer's -jobs mode writes the run's output to fuzz-0.log in the current directory.
    (
      cd "$work"
      TIMEFORMAT='%U %S'
      {
        time cargo +nightly fuzz run --fuzz-dir "$fuzz" "$target" -- \
          -jobs=1 -workers=1 -max_total_time="$left" -max_len="$(max_len "$target")" \
          -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 "${extra[@]}" \
          ${FUZZ_ARGS:-} >"$work/run.log" 2>&1
      } 2>"$work/time" || true
    )
    cat "$work"/fuzz-*.log "$work/run.log" >>"$log" 2>/dev/null || true
    read -r user sys <"$work/time" || true
    cpu=$(awk -v a="$cpu" -v u="${user:-0}" -v s="${sys:-0}" 'BEGIN { printf "%.1f", a + u + s }')
    run_execs=$(grep -aoE 'stat::number_of_executed_units: [0-9]+' "$work"/fuzz-*.log 2>/dev/null |
      tail -1 | grep -oE '[0-9]+$' || true)
    # Without final stats (a crash), the last status line's `#N`.
    [ -n "$run_execs" ] || run_execs=$(grep -aoE '^#[0-9]+' "$work"/fuzz-*.log 2>/dev/null |
      tail -1 | tr -d '#' || true)
    execs=$((execs + ${run_execs:-0}))
    run_cov=$(last_stat cov "$work/fuzz-0.log")
    run_ft=$(last_stat ft "$work/fuzz-0.log")
    [ "$run_cov" -gt "$cov" ] && cov=$run_cov
    [ "$run_ft" -gt "$ft" ] && ft=$run_ft
    new_crashes=$(($(count_crashes "$target") - crashes_before))
    if ! grep -aqE '^#[0-9]+' "$work"/fuzz-*.log 2>/dev/null; then
      echo "fuzz.sh: $target did not start fuzzing:" >&2
      tail -5 "$work"/fuzz-*.log "$work/run.log" >&2 2>/dev/null || true
      failed=1
      break
    fi
    if ! grep -aqE 'Test unit written to|deadly signal|ERROR: libFuzzer' "$work"/fuzz-*.log 2>/dev/null; then
      break # ran out its time
    fi
    echo "fuzz.sh: $target crashed (run $runs); see fuzz/artifacts/$target/" >&2
    [ "$new_crashes" -lt "$max_crashes" ] || break
  done
  crashes=$(($(count_crashes "$target") - crashes_before))
  if [ "${SKIP_CMIN:-}" != 1 ]; then
    # Set cover over edges (not hit counts): a few hundred files that reach every edge.
    (cd "$fuzz" && cargo +nightly fuzz cmin "$target" -- -max_len="$(max_len "$target")" \
      -set_cover_merge=1 -use_counters=0 -timeout=20 -rss_limit_mb=2048 \
      >"$logs/$target.cmin.log" 2>&1) ||
      echo "fuzz.sh: cmin of $target failed; see its log:" "$(tail -3 "$logs/$target.cmin.log")" >&2
  fi
  corpus=$(find "$fuzz/corpus/$target" -maxdepth 1 -type f | wc -l)
  printf '%s %s %s %s %s %s %s %s\n' "$target" "$seconds" "$cpu" "$execs" "$cov" "$ft" "$corpus" \
    "$crashes" >>"$row_file"
done

runs_md=$fuzz/RUNS.md
if [ ! -f "$runs_md" ]; then
  cat >"$runs_md" <<'EOF'
# Fuzzing runs

Appended by `scripts/fuzz.sh`, one row per target per session (`-jobs=1 -workers=1`, one
core). CPU seconds are user + system time of the run; `cov` is libFuzzer's edge coverage and
`ft` its features at the end of the run; `corpus` counts the files after `cargo fuzz cmin`;
`crashes` the new inputs in `fuzz/artifacts/<target>/` (triaged in the commit that follows).
Goal: 60 CPU-minutes per target.

| date | commit | target | wall s | CPU s | execs | cov | ft | corpus | crashes |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
EOF
fi
commit=${FUZZ_COMMIT:-$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)}
date=$(date -u +%Y-%m-%dT%H:%MZ)
while read -r target wall cpu execs cov ft corpus crashes; do
  [ "$execs" -gt 0 ] || continue # did not run: nothing to log
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$date" "$commit" "$target" "$wall" \
    "$cpu" "$execs" "$cov" "$ft" "$corpus" "$crashes" >>"$runs_md"
done <"$row_file"

total_minutes() {
  awk -F'|' -v t="$1" '$4 ~ "^ *" t " *$" { sum += $6 } END { printf "%.1f", sum / 60 }' "$runs_md"
}
printf '\n%-8s %8s %10s %7s %7s %7s %8s %12s\n' target CPU-s execs cov ft corpus crashes total-CPU-min
while read -r target wall cpu execs cov ft corpus crashes; do
  printf '%-8s %8s %10s %7s %7s %7s %8s %12s\n' "$target" "$cpu" "$execs" "$cov" "$ft" "$corpus" \
    "$crashes" "$(total_minutes "$target")"
done <"$row_file"
exit "$failed"
