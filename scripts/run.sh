#!/usr/bin/env bash
# Quickstart 1: set up, build, mint development certificates if there are none, and start the
# server on 127.0.0.1:7443 with its SQLite registry in ./data. Extra arguments go to vpcep-server.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

[ -f certs/dev/ca.crt ] || certs/generate.sh --out certs/dev
swift build -c release --product vpcep-server
swift build -c release --product vpcep
echo "run: the CLI is $(pwd)/.build/release/vpcep" >&2

exec .build/release/vpcep-server \
  --listen "${VPCEP_LISTEN:-127.0.0.1:7443}" \
  --data-dir "${VPCEP_DATA_DIR:-data}" \
  --tls-ca certs/dev/ca.crt --tls-cert certs/dev/server.crt --tls-key certs/dev/server.key \
  --region eu-west-1 --region eu-north-1 \
  "$@"
