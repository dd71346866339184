#!/usr/bin/env bash
# Download the KServe reference files the tests read, from the pinned KServe release: the
# InferenceService CRD (tests/chart validates every rendered InferenceService against it) and the
# v2 REST OpenAPI spec (the chart's `helm test` request is checked against it).
#
# Usage: hack/fetch-kserve-crds.sh [--dest DIR] [--force]
#   --dest DIR  where to write them (default: $KSERVE_CRD_DIR, else ../shared/reference/kserve
#               from the repository root: where the tests look)
#   --force     download again even if a file with the right checksum is there
#
# Each file is checked against a pinned SHA-256, so a moved tag or a broken download fails loudly.
set -euo pipefail

KSERVE_VERSION="v0.20.0"
# path in the kserve repository at KSERVE_VERSION -> its SHA-256
declare -A REFERENCE_SHA256=(
  [config/crd/full/serving.kserve.io_inferenceservices.yaml]="57c3bf13f77de94678bf2ae3748056ec071ad2b9e88d6a28f44fb4710758fcff"
  [docs/predict-api/v2/rest_predict_v2.yaml]="8106eb3dda1e3c824fa1e8aa4011c458360b6a6b5ac5a1eecae857ebd05844b8"
)
SOURCE_URL="https://raw.githubusercontent.com/kserve/kserve/${KSERVE_VERSION}"

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

sha256_of() {
  sha256sum "$1" | cut -d ' ' -f 1
}

# fetch PATH: download one reference file into ${dest} unless it is there with the pinned checksum.
fetch() {
  local path="$1" expected="${REFERENCE_SHA256[$1]}" target download actual
  target="${dest}/$(basename "${path}")"
  if [[ "${force}" == false && -f "${target}" && "$(sha256_of "${target}")" == "${expected}" ]]; then
    echo "${target} is already KServe ${KSERVE_VERSION}'s; nothing to do"
    return 0
  fi
  download="$(mktemp "${dest}/.download.XXXXXX")"
  echo "downloading KServe ${KSERVE_VERSION} ${path}"
  if ! curl --fail --silent --show-error --location --retry 3 --output "${download}" "${SOURCE_URL}/${path}"; then
    rm -f "${download}"
    return 1
  fi
  actual="$(sha256_of "${download}")"
  if [[ "${actual}" != "${expected}" ]]; then
    rm -f "${download}"
    echo "error: checksum mismatch for ${SOURCE_URL}/${path}: got ${actual}, expected ${expected}" >&2
    return 1
  fi
  mv "${download}" "${target}"
  echo "wrote ${target}"
}

command -v curl >/dev/null || { echo "error: curl is required" >&2; exit 1; }
mkdir -p "${dest}"
for path in "${!REFERENCE_SHA256[@]}"; do
  fetch "${path}"
done
echo "the tests read them with KSERVE_CRD_DIR=${dest}"
