#!/usr/bin/env bash
# Download the InferenceService CRD of the pinned KServe release, for the chart and manifest
# tests (tests/chart), which validate every rendered InferenceService against it.
#
# Usage: hack/fetch-kserve-crds.sh [--dest DIR] [--force]
#   --dest DIR  where to write it (default: $KSERVE_CRD_DIR, else ../shared/reference/kserve
#               from the repository root: where the tests look)
#   --force     download again even if a file with the right checksum is there
#
# The file is checked against a pinned SHA-256, so a moved tag or a broken download fails loudly.
set -euo pipefail

KSERVE_VERSION="v0.20.0"
CRD_PATH="config/crd/full/serving.kserve.io_inferenceservices.yaml"
CRD_SHA256="57c3bf13f77de94678bf2ae3748056ec071ad2b9e88d6a28f44fb4710758fcff"
CRD_URL="https://raw.githubusercontent.com/kserve/kserve/${KSERVE_VERSION}/${CRD_PATH}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${KSERVE_CRD_DIR:-../shared/reference/kserve}"
force=false

usage() {
  sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dest)
      [[ $# -ge 2 ]] || { echo "error: --dest needs a directory" >&2; exit 2; }
      dest="$2"
      shift 2
      ;;
    --force) force=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "error: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

# Relative destinations are relative to the repository root, as in the tests.
[[ "${dest}" = /* ]] || dest="${repo_root}/${dest}"
target="${dest}/$(basename "${CRD_PATH}")"

sha256_of() {
  sha256sum "$1" | cut -d ' ' -f 1
}

if [[ "${force}" == false && -f "${target}" && "$(sha256_of "${target}")" == "${CRD_SHA256}" ]]; then
  echo "${target} is already KServe ${KSERVE_VERSION}'s CRD; nothing to do"
  exit 0
fi

command -v curl >/dev/null || { echo "error: curl is required" >&2; exit 1; }
mkdir -p "${dest}"
download="$(mktemp "${dest}/.crd.XXXXXX")"
trap 'rm -f "${download}"' EXIT

echo "downloading KServe ${KSERVE_VERSION} InferenceService CRD"
curl --fail --silent --show-error --location --retry 3 --output "${download}" "${CRD_URL}"

actual="$(sha256_of "${download}")"
if [[ "${actual}" != "${CRD_SHA256}" ]]; then
  echo "error: checksum mismatch for ${CRD_URL}: got ${actual}, expected ${CRD_SHA256}" >&2
  exit 1
fi

mv "${download}" "${target}"
echo "wrote ${target}; the tests read it with KSERVE_CRD_DIR=${dest}"
