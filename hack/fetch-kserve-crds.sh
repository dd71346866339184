#!/usr/bin/env bash
# Copy the reference files of the pinned KServe release (hack/versions.env) out of its Go module,
# the same bytes as the release, for the chart and manifest tests (tests/chart): the
# InferenceService and ServingRuntime CRDs every rendered object is validated against, and the v2
# inference protocol's REST OpenAPI and gRPC definitions.
#
# Usage: hack/fetch-kserve-crds.sh [--dest DIR] [--force]
#   --dest DIR  where to write them (default: $KSERVE_CRD_DIR, else
#               ${XDG_CACHE_HOME:-~/.cache}/servekit/kserve-<version>: where the tests look)
#   --force     copy again even if a CRD with the right checksum is there
#
# Needs go (the module comes through the Go module proxy). The CRD is checked against a pinned
# SHA-256, so a moved tag fails loudly.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck disable=SC1091 # plain NAME=value lines, nothing to follow
source "${SERVEKIT_ROOT}/hack/versions.env"

readonly CRD_FILE="serving.kserve.io_inferenceservices.yaml"
readonly CRD_SHA256="57c3bf13f77de94678bf2ae3748056ec071ad2b9e88d6a28f44fb4710758fcff"
# file in the reference folder -> its path in the KServe module
readonly -A REFERENCE_FILES=(
  ["${CRD_FILE}"]="config/crd/full/${CRD_FILE}"
  [serving.kserve.io_servingruntimes.yaml]="config/crd/full/serving.kserve.io_servingruntimes.yaml"
  [serving.kserve.io_clusterservingruntimes.yaml]="config/crd/full/serving.kserve.io_clusterservingruntimes.yaml"
  [rest_predict_v2.yaml]="docs/predict-api/v2/rest_predict_v2.yaml"
  [grpc_predict_v2.proto]="docs/predict-api/v2/grpc_predict_v2.proto"
)

dest="${KSERVE_CRD_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/servekit/kserve-${KSERVE_VERSION}}"
force=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dest) need_value "$@"; dest="$2"; shift 2 ;;
    --force) force=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument: $1" ;;
  esac
done

# Relative destinations are relative to the repository root, as in the tests.
[[ "${dest}" = /* ]] || dest="${SERVEKIT_ROOT}/${dest}"

sha256_of() {
  sha256sum "$1" | cut -d ' ' -f 1
}

if [[ "${force}" == false && -f "${dest}/${CRD_FILE}" && "$(sha256_of "${dest}/${CRD_FILE}")" == "${CRD_SHA256}" ]]; then
  log "${dest} already holds KServe ${KSERVE_VERSION}'s reference files; nothing to do"
  exit 0
fi

command -v go >/dev/null 2>&1 ||
  die "go is required to fetch KServe ${KSERVE_VERSION}'s module (or point KSERVE_CRD_DIR at a folder with ${CRD_FILE})"
log "fetching KServe ${KSERVE_VERSION}'s Go module"
json="$(cd "${TMPDIR:-/tmp}" && GOFLAGS=-mod=mod go mod download -json "github.com/kserve/kserve@${KSERVE_VERSION}")" ||
  die "go mod download github.com/kserve/kserve@${KSERVE_VERSION} failed"
module="$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' <<<"${json}")"
[[ -d "${module}" ]] || die "go mod download gave no folder for github.com/kserve/kserve@${KSERVE_VERSION}: ${json}"

actual="$(sha256_of "${module}/${REFERENCE_FILES[${CRD_FILE}]}")"
if [[ "${actual}" != "${CRD_SHA256}" ]]; then
  die "checksum mismatch for KServe ${KSERVE_VERSION}'s ${CRD_FILE}: got ${actual}, expected ${CRD_SHA256}"
fi
mkdir -p "${dest}"
for file in "${!REFERENCE_FILES[@]}"; do
  install -m 0644 "${module}/${REFERENCE_FILES[${file}]}" "${dest}/${file}"
done
log "wrote KServe ${KSERVE_VERSION}'s reference files to ${dest}; the tests read them from there (KSERVE_CRD_DIR)"
