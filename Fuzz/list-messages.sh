#!/usr/bin/env bash
# Writes Sources/FuzzProtoMessages/MessageTypes.swift: every message type generated from proto/,
# in file and schema order. scripts/fuzz.sh runs it before each build, so the list follows the
# schema; the committed copy is what the seed corpus's first bytes index into.
set -euo pipefail
cd "$(dirname "$0")"
out=Sources/FuzzProtoMessages/MessageTypes.swift
{
  echo "// Written by Fuzz/list-messages.sh from Sources/VPCEPProto/Generated. Do not edit."
  echo "import VPCEPProto"
  echo
  echo "/// Every generated message type; a fuzz input's first byte picks one."
  echo "let messageTypes: [any ProtoMessage.Type] = ["
  for file in ../Sources/VPCEPProto/Generated/*.pb.swift; do
    sed -n 's/^public struct \([A-Za-z0-9_]*\): ProtoMessage {$/    \1.self,/p' "$file"
  done
  echo "]"
} > "$out.tmp"
mv "$out.tmp" "$out"
