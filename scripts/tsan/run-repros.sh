#!/usr/bin/env bash
# Builds and runs the reproductions behind tsan-suppressions.txt under ThreadSanitizer; prints how
# many reports each gave. Expected: mutex-futex > 0, mutex-pthread 0, continuation-resume > 0.
set -euo pipefail
cd "$(dirname "$0")"
command -v swiftc >/dev/null || export PATH=/opt/swift/usr/bin:$PATH
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for name in mutex-futex mutex-pthread continuation-resume; do
  swiftc -parse-as-library -sanitize=thread -g "$name.swift" -o "$work/$name" 2>/dev/null
  reports=$(TSAN_OPTIONS=exitcode=0 "$work/$name" 2>&1 | grep -c "WARNING: ThreadSanitizer" || true)
  echo "$name: $reports reports"
done
