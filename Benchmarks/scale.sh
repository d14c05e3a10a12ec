#!/usr/bin/env bash
# Issue 14's scenarios: seeds SQLite registries of 1,000, 100,000 and 1,000,000 records through the
# registry, one store transaction per tenant (timed apart, kept in .work/scale-N for the next run of the
# same plan), then measures vpcep-server on each: "scale" (start-up, RSS, store size, GetEndpointService
# with 64 callers over many services, first and deep pages of filtered lists), "cold" (after a restart,
# the first read of each of 100,000 services) and "mixed" (64 callers, reads only, then 90% reads and
# 10% writes) (BENCHMARKS.md, "Scale (issue 14)").
#   Benchmarks/scale.sh [--sizes 1000,100000] [--scenarios scale,cold,mixed] [--rounds N] [--reseed]
#                       [--cold-services N] [--per-record]
# Knobs (environment): SCRATCH (.build-bench), SKIP_BUILD, SCALE_SIZES, SCALE_SCENARIOS, SCALE_ROUNDS (1),
# SCALE_SEED (14), SCALE_COLD_SERVICES (100000), SCALE_LIST_CALLS (200 timed calls per list page; fewer
# for 1,000,000, where a page takes seconds), WARMUP (3 s), DURATION (6 s). Raw data:
# Benchmarks/.work/scale.json (appended) and the same lines appended to
# Benchmarks/results/DATE-COMMIT-scale.json.
set -euo pipefail
cd "$(dirname "$0")"
bench=$(pwd)
scratch=${SCRATCH:-.build-bench}

if [ -z "${SKIP_BUILD:-}" ]; then
  rm -f "$scratch/release.yaml"  # see run.sh: SwiftPM misses files added to the main package otherwise
  swift build -c release --scratch-path "$scratch" --product vpcep-server
  swift build -c release --scratch-path "$scratch" --product vpcep-scale
fi
bin=$(swift build -c release --scratch-path "$scratch" --show-bin-path)

mkdir -p .work results
# The mixed scenario writes as the seeded tenants t00000-t00063.
../certs/generate.sh --out .work/certs --tenant alice --operator ops $(printf -- '--tenant t%05d ' $(seq 0 63)) >/dev/null

run=".work/scale-run.json"
rm -f "$run"
python3 scale.py --server "$bin/vpcep-server" --scale "$bin/vpcep-scale" --work "$bench/.work" --certs "$bench/.work/certs" \
  --out "$run" "$@"
cat "$run" >> .work/scale.json
cat "$run" >> "results/$(date -u +%Y-%m-%d)-$(git rev-parse --short HEAD)-scale.json"  # runs of one day and commit add up
