#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 20) each, two at a time, from the seed corpus in
# tests/fuzz/corpus/TARGET; new inputs go to WORK/TARGET (default target/fuzz-corpus), so the
# seed corpus in git only grows by hand. A crash fails the run and leaves its input in
# tests/fuzz/artifacts/TARGET/: turn it into a regression file in the seed corpus.
# Needs cargo-fuzz and a nightly toolchain, or RUSTC_BOOTSTRAP=1 on stable (set below when no
# nightly is installed, or when FUZZ_TOOLCHAIN names a stable one).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-20}
work=${2:-target/fuzz-corpus}
toolchain=()
if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
  toolchain=(+"$FUZZ_TOOLCHAIN")
  [[ "$FUZZ_TOOLCHAIN" == nightly* ]] || export RUSTC_BOOTSTRAP=1
elif rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi
cargo "${toolchain[@]}" fuzz build --fuzz-dir tests/fuzz
pids=()
status=0
for target in udp_answer tcp_framing config_parse stack_parse; do
  mkdir -p "$work/$target"
  cargo "${toolchain[@]}" fuzz run --fuzz-dir tests/fuzz "$target" "$work/$target" \
    "tests/fuzz/corpus/$target" -- -max_total_time="$seconds" -print_final_stats=1 \
    >"$work/$target.log" 2>&1 &
  pids+=($!)
  if (( ${#pids[@]} == 2 )); then
    for pid in "${pids[@]}"; do wait "$pid" || status=1; done
    pids=()
  fi
done
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
for target in udp_answer tcp_framing config_parse stack_parse; do
  echo "== $target: $(grep -E '^#[0-9]+\s+DONE' "$work/$target.log" | tail -1)"
done
if (( status != 0 )); then
  echo "a fuzz target failed: see $work/*.log and tests/fuzz/artifacts/" >&2
fi
exit "$status"
