#!/usr/bin/env bash
# Issue 12's PostgreSQL benchmark, one command (about 5 minutes after the build with 3 rounds): builds
# vpcep-server and vpcep-bench in release, mints the benchmark PKI, starts one throwaway PostgreSQL
# cluster (scripts/postgres.sh: Debian's package when missing, fsync on, removed at the end), then
# runs postgres.py: pgbench with a one-row insert transaction and with vpcep's own statements, vpcep
# durable creates through one and through three servers, cached reads through one server on
# PostgreSQL and one on SQLite, each phase on a fresh schema. Prints the Markdown table of
# BENCHMARKS.md, "PostgreSQL beside pgbench (issue 12)"; raw results in Benchmarks/.work/postgres.json.
# Knobs (environment): SCRATCH (.build-bench), PG_ROUNDS (3), PG_WARMUP (2 s), PG_DURATION (8 s),
# PG_CALLERS (64). SKIP_BUILD=1 reuses the binaries (run.sh, which has just built them). SERVER_BIN and
# BENCH_BIN name a vpcep-server or vpcep-bench built elsewhere (e.g. the server of a worktree, built with
# `swift build -c release --product vpcep-server`, beside another checkout's vpcep-bench), and skip
# building it here. Arguments go to postgres.py, e.g. `--only creates --rounds 1`.
set -euo pipefail
cd "$(dirname "$0")"
bench=$(pwd)
scratch=${SCRATCH:-.build-bench}

if [ -z "${SKIP_BUILD:-}" ]; then
  rm -f "$scratch/release.yaml"  # see run.sh: SwiftPM's cached plan misses new files of the main package
  [ -n "${SERVER_BIN:-}" ] || swift build -c release --scratch-path "$scratch" --product vpcep-server
  [ -n "${BENCH_BIN:-}" ] || swift build -c release --scratch-path "$scratch" --product vpcep-bench
fi
bin=$(swift build -c release --scratch-path "$scratch" --show-bin-path)
server=${SERVER_BIN:-$bin/vpcep-server}
bench_bin=${BENCH_BIN:-$bin/vpcep-bench}

mkdir -p .work
../certs/generate.sh --out .work/certs --tenant alice >/dev/null

# shellcheck source=../scripts/postgres.sh
source ../scripts/postgres.sh
trap vpcep_postgres_stop EXIT

python3 postgres.py --server "$server" --bench "$bench_bin" --certs "$bench/.work/certs" \
  --pg-url "$VPCEP_TEST_POSTGRES_URL" --pg-bin "$vpcep_postgres_bindir" --pg-data "$vpcep_postgres_dir/data" \
  --out "$bench/.work/postgres.json" "$@"
