#!/usr/bin/env bash
# Install the Debian tools that `make test` uses: shellcheck (lint), prometheus (the metrics
# integration tests), wrk (the benchmark's load generator); then, through hack/image/install-tools.sh,
# what builds the images and runs the real node (buildah, mmdebstrap, containerd, runc, the CNI
# plugins, iptables, gcc). Idempotent: installed tools are left alone; nothing happens when all are there.
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

# command (or absolute path) -> Debian package
readonly -A PACKAGES=([shellcheck]=shellcheck [prometheus]=prometheus [wrk]=wrk)

check_only=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --check) check_only=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option: $1" ;;
  esac
done

# The image and node tools have their own script (make image-tools); the tests need them too.
image_tools=(bash "${SERVEKIT_ROOT}/hack/image/install-tools.sh")
if [[ "${check_only}" == true ]]; then
  image_tools+=(--check)
fi
"${image_tools[@]}"

missing=()
for command in "${!PACKAGES[@]}"; do
  command -v "${command}" >/dev/null 2>&1 || missing+=("${PACKAGES[${command}]}")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
install_debian_packages "${check_only}" "${missing[@]}"
