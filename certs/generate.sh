#!/usr/bin/env bash
# Mints a development PKI for vpcep: one CA, a server certificate and client identities.
# Run with --help for usage.
set -euo pipefail

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd -- "$script_dir/.." && pwd)"

usage() {
    cat <<EOF
usage: certs/generate.sh [--out DIR] [--tenant NAME]... [--operator NAME]... [--days N] [--force]

Writes an EC P-256 development PKI into DIR:
  ca.crt, ca.key           the certificate authority (reused when already in DIR)
  server.crt, server.key   server certificate: SAN DNS:localhost, IP:127.0.0.1; serverAuth
  NAME.crt, NAME.key       one client identity per --tenant / --operator, with the URI SAN
                           vpcep://tenant/NAME or vpcep://operator/NAME; clientAuth

Options:
  --out DIR        output directory (default: certs/dev in the repository root)
  --tenant NAME    issue a tenant identity (repeatable)
  --operator NAME  issue an operator identity (repeatable)
                   with neither option: tenants alice and bob, operator ops
  --days N         validity of newly issued certificates in days (default: 365)
  --force          replace the CA and every certificate in DIR instead of reusing them
  -h, --help       print this help

Existing files that still verify against the CA in DIR are kept, so re-running is a no-op
and adding an identity later keeps the others. Keys are written with mode 0600.
NAME: letters, digits, '.', '_' and '-', starting with a letter or digit; not "ca" or "server".
EOF
}

die() {
    echo "generate.sh: $*" >&2
    exit 1
}

out="$repo_root/certs/dev"
days=365
force=0
tenants=()
operators=()

while (($# > 0)); do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --out) (($# >= 2)) || die "--out needs a directory"; out="$2"; shift 2 ;;
        --out=*) out="${1#--out=}"; shift ;;
        --tenant) (($# >= 2)) || die "--tenant needs a name"; tenants+=("$2"); shift 2 ;;
        --tenant=*) tenants+=("${1#--tenant=}"); shift ;;
        --operator) (($# >= 2)) || die "--operator needs a name"; operators+=("$2"); shift 2 ;;
        --operator=*) operators+=("${1#--operator=}"); shift ;;
        --days) (($# >= 2)) || die "--days needs a number"; days="$2"; shift 2 ;;
        --days=*) days="${1#--days=}"; shift ;;
        --force) force=1; shift ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

[[ -n "$out" ]] || die "--out needs a directory"
[[ "$days" =~ ^[1-9][0-9]{0,5}$ ]] || die "--days must be a positive whole number, got '$days'"
if ((${#tenants[@]} == 0 && ${#operators[@]} == 0)); then
    tenants=(alice bob)
    operators=(ops)
fi

declare -A seen=()
for name in ${tenants[@]+"${tenants[@]}"} ${operators[@]+"${operators[@]}"}; do
    [[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$ ]] || die "invalid identity name: '$name'"
    [[ "$name" != ca && "$name" != server ]] || die "identity name '$name' is reserved"
    [[ -z "${seen[$name]:-}" ]] || die "identity name '$name' given twice"
    seen[$name]=1
done

command -v openssl >/dev/null || die "openssl not found"
mkdir -p -- "$out"
out="$(cd -- "$out" && pwd)"

work="$(mktemp -d)"
trap 'rm -rf -- "$work"' EXIT

# Runs openssl quietly; shows its output only when it fails.
ossl() {
    if ! openssl "$@" >"$work/log" 2>&1; then
        cat "$work/log" >&2
        die "openssl $1 failed"
    fi
}

new_key() { # path
    (umask 077 && ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -pkeyopt ec_param_enc:named_curve -out "$1.tmp")
    chmod 600 "$1.tmp"
    mv -f -- "$1.tmp" "$1"
}

serial() { echo "0x$(openssl rand -hex 16)"; }

# A leaf is kept when its key and certificate exist, the certificate verifies against the CA,
# names the wanted URI SAN (when one is wanted), and the key matches it.
leaf_is_current() { # base purpose required-san-text
    [[ -f "$1.key" && -f "$1.crt" ]] || return 1
    openssl verify -CAfile "$out/ca.crt" -purpose "$2" "$1.crt" >/dev/null 2>&1 || return 1
    if [[ -n "$3" ]]; then
        openssl x509 -in "$1.crt" -noout -ext subjectAltName 2>/dev/null | grep -qxF "    $3" || return 1
    fi
    [[ "$(openssl x509 -in "$1.crt" -noout -pubkey 2>/dev/null)" == \
        "$(openssl pkey -in "$1.key" -pubout 2>/dev/null)" ]]
}

issue_leaf() { # base subject purpose(sslserver|sslclient) extended-key-usage subject-alt-names
    local base="$1" subject="$2" purpose="$3" eku="$4" san="$5"
    local want=""
    [[ "$san" == URI:* ]] && want="$san"
    if ((force == 0)) && leaf_is_current "$base" "$purpose" "$want"; then
        return 0
    fi
    new_key "$base.key"
    cat >"$work/leaf.cnf" <<EOF
[ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = $eku
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    ossl req -new -key "$base.key" -subj "$subject" -out "$work/leaf.csr"
    ossl x509 -req -in "$work/leaf.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
        -set_serial "$(serial)" -days "$days" -sha256 \
        -extfile "$work/leaf.cnf" -extensions ext -out "$base.crt.tmp"
    mv -f -- "$base.crt.tmp" "$base.crt"
}

# The CA: reused unless missing or --force.
if ((force == 1)) || [[ ! -f "$out/ca.crt" || ! -f "$out/ca.key" ]]; then
    new_key "$out/ca.key"
    cat >"$work/ca.cnf" <<EOF
[req]
distinguished_name = dn
x509_extensions = ext
[dn]
[ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
    ossl req -x509 -new -config "$work/ca.cnf" -key "$out/ca.key" \
        -subj "/O=vpcep/CN=vpcep development CA $(openssl rand -hex 4)" \
        -set_serial "$(serial)" -days "$((days > 3650 ? days : 3650))" -sha256 -out "$out/ca.crt.tmp"
    mv -f -- "$out/ca.crt.tmp" "$out/ca.crt"
fi
chmod 600 "$out/ca.key"

issue_leaf "$out/server" "/O=vpcep/CN=localhost" sslserver serverAuth "DNS:localhost, IP:127.0.0.1"
for name in ${tenants[@]+"${tenants[@]}"}; do
    issue_leaf "$out/$name" "/O=vpcep/OU=tenant/CN=$name" sslclient clientAuth "URI:vpcep://tenant/$name"
done
for name in ${operators[@]+"${operators[@]}"}; do
    issue_leaf "$out/$name" "/O=vpcep/OU=operator/CN=$name" sslclient clientAuth "URI:vpcep://operator/$name"
done

echo "certificates in $out"
