#!/usr/bin/env bash
# Install what building and running images without Docker needs, from Debian's packages:
# buildah (daemonless builds), mmdebstrap (the Python base from Debian's packages), containerd
# and runc (the node's runtime, and verify.sh's throwaway one), the CNI plugins (the node's pod
# network), gcc with a static libc (the pause binary). Idempotent: installed tools are left alone.
#
# Usage: hack/image/install-tools.sh [--check]
#
#   --check      only report what is missing (exit 1 if anything is), install nothing
#   -h, --help   show this help
#
# Installing needs apt-get and root. Elsewhere it says what to install by hand.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# what must exist -> Debian package
readonly -A PACKAGES=(
  [buildah]=buildah
  [mmdebstrap]=mmdebstrap
  [containerd]=containerd
  [ctr]=containerd
  [runc]=runc
  [/usr/lib/cni/bridge]=containernetworking-plugins
  [iptables]=iptables
  [gcc]=gcc
  [/usr/lib/x86_64-linux-gnu/libc.a]=libc6-dev
)

check_only=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --check) check_only=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option: $1" ;;
  esac
done

present() {
  if [[ "$1" == /* ]]; then
    # The static libc sits under the host's multiarch triplet; any one counts.
    [[ -e "$1" ]] || compgen -G "/usr/lib/*-linux-gnu/$(basename "$1")" >/dev/null
  else
    command -v "$1" >/dev/null 2>&1
  fi
}

missing=()
for thing in "${!PACKAGES[@]}"; do
  if ! present "${thing}" && [[ " ${missing[*]} " != *" ${PACKAGES[${thing}]} "* ]]; then
    missing+=("${PACKAGES[${thing}]}")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  log "buildah, mmdebstrap, containerd, runc, the CNI plugins and gcc are installed"
  exit 0
fi
install_debian_packages "${check_only}" "${missing[@]}"
