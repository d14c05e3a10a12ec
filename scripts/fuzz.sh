#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ and runs each for SECONDS (default 60) from its seed corpus
# in Fuzz/Corpus/<target>. New inputs that add coverage go to Fuzz/.work/corpus/<target> (not
# committed); a crash, a failed check or a timeout is saved as Fuzz/.work/artifacts/<target>/crash-*
# (or timeout-*, oom-*) and makes the script fail. Replay one with
#   Fuzz/.build/debug/<target> <file>
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     targets: FuzzServerConnection FuzzProtoMessages
#   scripts/fuzz.sh --seeds                   rewrite the committed seed corpora
#
# The build instruments every module (the main package's and its dependencies') for coverage and
# AddressSanitizer; the first build takes several minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

all_targets=(FuzzServerConnection FuzzProtoMessages)
write_seeds=false
seconds=60
if [ "${1:-}" = "--seeds" ]; then
  write_seeds=true
  shift
elif [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

Fuzz/list-messages.sh
mkdir -p Fuzz/.work
# One comma-separated -sanitize: swiftc honours only the last -sanitize= it is given, and
# `swift build --sanitize=fuzzer --sanitize=address` passes one each in no fixed order, so a build
# came out with ASan but no coverage. `--sanitize=fuzzer` stays for SwiftPM itself: with it, it
# links the targets without a `main` of their own (libFuzzer's). The C targets get coverage only.
build=(swift build --package-path Fuzz --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address)
# The linker's warnings about ASan's local symbols are noise; the log keeps them.
if ! "${build[@]}" >Fuzz/.work/build.log 2>&1; then
  grep -E "error:" Fuzz/.work/build.log >&2 || tail -n 40 Fuzz/.work/build.log >&2
  echo "fuzz: the build failed (Fuzz/.work/build.log)" >&2
  exit 1
fi
bin=$("${build[@]}" --show-bin-path)
if [ "$(nm "$bin/FuzzServerConnection" | grep -c '__sancov_gen_')" -eq 0 ]; then
  echo "fuzz: the targets were built without coverage instrumentation" >&2
  exit 1
fi

# Swift's own crash handler would take the signal before libFuzzer writes the input out.
export SWIFT_BACKTRACE=enable=no
# The Swift runtime keeps allocations to the end of the process that LeakSanitizer reports.
export ASAN_OPTIONS=detect_leaks=0:${ASAN_OPTIONS:-}

if $write_seeds; then
  for target in "${targets[@]}"; do
    rm -rf "Fuzz/Corpus/$target"
    VPCEP_FUZZ_WRITE_SEEDS="Fuzz/Corpus/$target" "$bin/$target"
    echo "fuzz: wrote $(ls "Fuzz/Corpus/$target" | wc -l) seeds to Fuzz/Corpus/$target"
  done
  exit 0
fi

failed=()
for target in "${targets[@]}"; do
  corpus="Fuzz/.work/corpus/$target"
  artifacts="Fuzz/.work/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  echo "fuzz: $target for ${seconds}s"
  # -timeout: one input taking a second is a hang (inputs run in microseconds); -rss_limit_mb
  # catches memory that grows across inputs.
  if ! "$bin/$target" "$corpus" "Fuzz/Corpus/$target" -max_total_time="$seconds" -timeout=5 \
      -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 -artifact_prefix="$artifacts/" \
      >"Fuzz/.work/$target.log" 2>&1; then
    failed+=("$target")
    tail -n 40 "Fuzz/.work/$target.log" >&2
  fi
  grep -E "^stat::(number_of_executed_units|new_units_added)|cov:" "Fuzz/.work/$target.log" | tail -n 3
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}; inputs in Fuzz/.work/artifacts/" >&2
  exit 1
fi
echo "fuzz: no crash in ${targets[*]}"
