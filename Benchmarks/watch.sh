#!/usr/bin/env bash
# Issue 11's watch scenario beside etcd, one command (about 2 minutes after the build): builds
# vpcep-server and vpcep-bench in release, mints the benchmark PKI, installs Debian's etcd-server
# when `etcd` is missing, then runs watch.py: a fresh vpcep and a fresh etcd on 127.0.0.1, each
# with 1,000 watchers while 500 writes/s are applied, and write throughput with and without them,
# in two layouts: `all` (every watcher sees every write) and `spread` (each watcher follows one
# resource of its own; each write is delivered once). Prints the Markdown tables of BENCHMARKS.md,
# "Watch beside etcd"; raw results in Benchmarks/.work/watch.json. Knobs (environment): SCRATCH
# (.build-bench), WATCH_LAYOUT ("all spread"), WATCH_ROUNDS (1), WATCHERS (1000), WATCH_CONNS (40),
# RATE (500), WATCH_DURATION (20 s), TPUT_DURATION (8 s).
# SKIP_BUILD=1 reuses the binaries (run.sh, which has just built them).
set -euo pipefail
cd "$(dirname "$0")"
bench=$(pwd)
scratch=${SCRATCH:-.build-bench}
ulimit -n "$(ulimit -Hn)"

if [ -z "${SKIP_BUILD:-}" ]; then
  rm -f "$scratch/release.yaml"  # see run.sh: SwiftPM's cached plan misses new files of the main package
  swift build -c release --scratch-path "$scratch" --product vpcep-server
  swift build -c release --scratch-path "$scratch" --product vpcep-bench
fi
bin=$(swift build -c release --scratch-path "$scratch" --show-bin-path)

mkdir -p .work
../certs/generate.sh --out .work/certs --tenant alice --tenant bob --operator ops >/dev/null

python3 watch.py --server "$bin/vpcep-server" --bench "$bin/vpcep-bench" --certs "$bench/.work/certs" \
  --out "$bench/.work/watch.json" "$@"
