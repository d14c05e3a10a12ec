#!/usr/bin/env bash
# Installs what building and testing vpcep needs on Debian (as root, or with sudo), once.
# Sourced by run.sh and test.sh so that PATH changes reach them.
set -euo pipefail

packages=(pkg-config openssl libssl-dev protobuf-c-compiler libprotobuf-c-dev protobuf-compiler python3)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Swift toolchain is not a Debian package; it is expected at /opt/swift or on PATH.
if ! command -v swift >/dev/null 2>&1; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
  else
    echo "setup: no Swift toolchain found; install Swift 6.1 or later (swift.org) and put it on PATH" >&2
    exit 1
  fi
fi
