#!/usr/bin/env bash
# Build the predictor image from the repository's Dockerfile and load it into a kind cluster's
# nodes, so pods run it with imagePullPolicy: Never (no registry involved).
#
# Usage: hack/build-and-load.sh [--name CLUSTER] [--image REF] [--variant cpu|cuda] [--no-load]
#
#   --name CLUSTER   kind cluster to load into (default: $KIND_CLUSTER_NAME, else servekit)
#   --image REF      image reference to build (default: servekit/predictor:dev)
#   --variant V      Dockerfile VARIANT build argument: cpu (scikit-learn) or cuda (adds PyTorch)
#                    (default: cpu)
#   --no-load        build only
#   -h, --help       show this help
#
# Needs docker (a running engine) and, to load, kind.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

name="${KIND_CLUSTER_NAME:-servekit}"
image="servekit/predictor:dev"
variant="cpu"
load=true

while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need_value "$@"; name="$2"; shift 2 ;;
    --image) need_value "$@"; image="$2"; shift 2 ;;
    --variant) need_value "$@"; variant="$2"; shift 2 ;;
    --no-load) load=false; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option: $1" ;;
  esac
done
case "${variant}" in
  cpu | cuda) ;;
  *) usage_error "--variant must be cpu or cuda, got '${variant}'" ;;
esac
# A tag or digest keeps the reference pinned; a bare name would mean the floating default tag.
if [[ "${image##*/}" != *[:@]* ]]; then
  usage_error "--image '${image}' needs an explicit tag, e.g. ${image}:dev"
fi

require_docker_engine
if [[ "${load}" == true ]]; then
  require_tools kind
  if ! kind get clusters 2>/dev/null | grep -qx "${name}"; then
    die "kind cluster '${name}' does not exist: create it with hack/kind-up.sh --name ${name}"
  fi
fi

log "building ${image} (VARIANT=${variant}) from ${SERVEKIT_ROOT}"
docker build --build-arg "VARIANT=${variant}" -t "${image}" "${SERVEKIT_ROOT}"

if [[ "${load}" == false ]]; then
  log "built ${image}"
  exit 0
fi

# `kind load docker-image` can fail with Docker's containerd image store (it exports every
# platform of the image); a plain archive of the one platform that was built always loads.
log "loading ${image} into kind cluster '${name}'"
if ! kind load docker-image "${image}" --name "${name}"; then
  warn "kind load docker-image failed; loading the image from an archive instead"
  archive="$(mktemp -d)/image.tar"
  trap 'rm -rf "$(dirname "${archive}")"' EXIT
  docker save -o "${archive}" "${image}"
  kind load image-archive "${archive}" --name "${name}"
fi

# Every node must have it, or a pod scheduled there fails with ErrImageNeverPull.
for node in $(kind get nodes --name "${name}"); do
  if ! docker exec "${node}" crictl inspecti "${image}" >/dev/null 2>&1; then
    die "${image} is not on node ${node} after loading it"
  fi
done
log "${image} is loaded on every node of '${name}'; deploy it with imagePullPolicy: Never"
