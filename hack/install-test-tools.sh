#!/usr/bin/env bash
# Install the Debian tools that `make test` uses: shellcheck (lint), prometheus (the metrics
# integration tests) and wrk (the benchmark's load generator). Idempotent: installed tools are
# left alone; nothing happens when all are there.
#
# Usage: hack/install-test-tools.sh [--check]
#
#   --check      only report what is missing (exit 1 if anything is), install nothing
#   -h, --help   show this help
#
# Installing needs apt-get and root (as on CI). Elsewhere it says what to install by hand.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# command -> Debian package
readonly -A PACKAGES=([shellcheck]=shellcheck [prometheus]=prometheus [wrk]=wrk)

check_only=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --check) check_only=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option: $1" ;;
  esac
done

missing=()
for command in "${!PACKAGES[@]}"; do
  command -v "${command}" >/dev/null 2>&1 || missing+=("${PACKAGES[${command}]}")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
if [[ "${check_only}" == true ]]; then
  die "missing: ${missing[*]} (apt-get install ${missing[*]})"
fi
if ! command -v apt-get >/dev/null 2>&1 || [[ "$(id -u)" -ne 0 ]]; then
  die "missing: ${missing[*]}; install them with your package manager (Debian: sudo apt-get install ${missing[*]})"
fi
log "installing ${missing[*]} with apt-get"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
log "installed ${missing[*]}"
