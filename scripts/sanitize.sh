#!/usr/bin/env bash
# Builds and runs the whole test suite under a sanitizer: `scripts/sanitize.sh address|thread`.
# Extra arguments go to `swift test` (e.g. --filter). Not part of scripts/test.sh: each is a full
# rebuild into its own scratch path (.build-asan, .build-tsan).
#
# Every process the tests start (vpcep-server, vpcep) inherits the sanitizer options and writes its
# reports to a file next to the runner's; the script fails on any report from any of them, even
# one whose test did not look at the exit status.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

mode=${1:-}
case "$mode" in
  address) scratch=.build-asan ;;
  thread) scratch=.build-tsan ;;
  *) echo "usage: scripts/sanitize.sh address|thread [swift test arguments]" >&2; exit 64 ;;
esac
shift

swift build --build-tests --sanitize="$mode" --scratch-path "$scratch"

reports="$scratch/sanitizer-reports"
rm -rf "$reports"
mkdir -p "$reports"
# Swift's own crash handler would hide a sanitizer's abort report behind its backtrace.
export SWIFT_BACKTRACE=enable=no
case "$mode" in
  address)
    # The test runner and the Swift runtime keep allocations to the end of the process, which
    # LeakSanitizer reports; leaks are not what this run looks for.
    export ASAN_OPTIONS="detect_leaks=0:log_path=$PWD/$reports/asan:${ASAN_OPTIONS:-}"
    ;;
  thread)
    # Proven false positives only; see the file.
    export TSAN_OPTIONS="log_path=$PWD/$reports/tsan:suppressions=$PWD/scripts/tsan/suppressions.txt:${TSAN_OPTIONS:-}"
    ;;
esac

status=0
swift test --skip-build --sanitize="$mode" --scratch-path "$scratch" "$@" || status=$?

if compgen -G "$reports/*" >/dev/null; then
  echo "sanitize: $mode reports (in $reports):" >&2
  for report in "$reports"/*; do
    echo "--- $report" >&2
    head -n 60 "$report" >&2
  done
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "sanitize: the tests failed under $mode (exit $status) with no sanitizer report" >&2
  exit "$status"
fi
echo "sanitize: $mode: the whole suite passed with no report"
