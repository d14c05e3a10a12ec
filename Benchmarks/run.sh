#!/usr/bin/env bash
# The one command of issue 6: builds vpcep-server, the gRPC peer and the load generator in
# release, mints a benchmark PKI, seeds one SQLite registry, then runs vpcep, grpc-swift-2 and
# (where `apt-get install nginx wrk` was done) nginx alternately for ROUNDS rounds and prints
# the Markdown table of BENCHMARKS.md, then the overload scenarios of overload.py and the
# NOT_FOUND timing of not_found_timing.py, the watch scenario of watch.sh, the PostgreSQL
# benchmark of postgres.sh and the scale scenario of scale.sh. Raw results:
# Benchmarks/.work/results.json and Benchmarks/.work/overload.json.
# Knobs (environment): SCRATCH (.build-bench, the build folder), ROUNDS (3), WARMUP (3 s), DURATION (6 s), HS_SECONDS (4), IDLE_CONNS (10000).
set -euo pipefail
cd "$(dirname "$0")"
bench=$(pwd)
scratch=${SCRATCH:-.build-bench}
ulimit -n "$(ulimit -Hn)"  # 10,000 idle connections need more than the usual 1024

# SwiftPM keeps its build plan for the main package (a path dependency) and misses source files
# added to it since; dropping the plan makes it look again (it is rebuilt in a second or two).
rm -f "$scratch/release.yaml"
swift build -c release --scratch-path "$scratch" --product vpcep-server
swift build -c release --scratch-path "$scratch" --product vpcep  # not_found_timing.py publishes with the CLI
swift build -c release --scratch-path "$scratch"
bin=$(swift build -c release --scratch-path "$scratch" --show-bin-path)

mkdir -p .work
../certs/generate.sh --out .work/certs --tenant alice >/dev/null
../certs/generate.sh --out .work/other-certs --tenant eve >/dev/null  # a CA the server does not trust

python3 orchestrate.py --server "$bin/vpcep-server" --peer "$bin/vpcep-grpc-peer" --bench "$bin/vpcep-bench" \
  --work "$bench/.work" --certs "$bench/.work/certs" "$@"

# Issue 10's scenarios, vpcep only: refused clients that write at once, ten connections that never
# read, and a flood of connections that send nothing from 127.0.0.2 (about a minute in all). One
# JSON line per scenario.
python3 overload.py --server "$bin/vpcep-server" --certs "$bench/.work/certs" --other-certs "$bench/.work/other-certs" \
  | tee "$bench/.work/overload.json"

# Issue 10, defect 7: NOT_FOUND for another tenant's service against one for a missing id, 300
# interleaved pairs per operation (a few seconds).
python3 not_found_timing.py --bin "$bin" --pairs 300

# Issue 11: the watch scenario beside etcd (about 2.5 minutes; installs Debian's etcd-server when
# `etcd` is missing). Its table is BENCHMARKS.md's "Watch beside etcd"; raw: Benchmarks/.work/watch.json.
SKIP_BUILD=1 ./watch.sh

# Issue 12: vpcep on PostgreSQL beside pgbench on the same throwaway cluster (about 5 minutes; installs
# Debian's postgresql when missing). Its table is BENCHMARKS.md's "PostgreSQL beside pgbench (issue 12)";
# raw: Benchmarks/.work/postgres.json.
SKIP_BUILD=1 ./postgres.sh

# Issue 14: the scale, cold and mixed scenarios, registries of 1,000 to 1,000,000 records (the seeding,
# timed apart, is the long part the first time; its data directories are kept in .work/ and reused).
# Its table is BENCHMARKS.md's "Scale (issue 14)"; raw: Benchmarks/.work/scale.json.
SKIP_BUILD=1 ./scale.sh
