#!/usr/bin/env bash
# Quickstart 2: set up, check that generated code is current, build with no warnings in our own
# code, and run the whole test suite (unit, codec, TLS, registry, the store contract suite against
# SQLite and a throwaway PostgreSQL cluster, and end to end against real server processes). Extra
# arguments go to `swift test`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

scripts/generate.sh --check

log=$(mktemp)
trap 'rm -f "$log"' EXIT
swift build --build-tests 2>&1 | tee "$log"
# Dependencies' warnings are theirs; ours are not allowed.
if grep -E "^$(pwd)/(Sources|Tests)/.*: warning:" "$log"; then
  echo "test: the build has warnings in our code (above)" >&2
  exit 1
fi

# The store contract suite runs against PostgreSQL too: a cluster of our own, removed on exit.
source scripts/postgres.sh
trap 'rm -f "$log"; vpcep_postgres_stop' EXIT

swift test --skip-build "$@"
