#!/usr/bin/env bash
# Build servekit's container images without a Docker engine (buildah), or with one (docker build).
#
# Usage: hack/image/build.sh [--force] IMAGE...
#
#   IMAGE        predictor | canary-controller | storage-initializer | pause | base | all (= the first four)
#   --force      rebuild even when the image's cache key matches
#   -h, --help   show this help
#
# Output contract (what `make image`, hack/controlplane.sh and the tests rely on):
#   predictor            servekit/predictor:dev            from ./Dockerfile (UID 65532, read-only root, /tmp)
#   canary-controller    servekit/canary-controller:dev    from ./Dockerfile --target controller (entrypoint
#                        servekit-canary; the canary extra without KServe or scikit-learn; same contract)
#   storage-initializer  servekit/storage-initializer:dev  from hack/image/storage-initializer/ (UID 1000;
#                        KServe's args: SRC_URI DEST_PATH [...]; entrypoint
#                        /storage-initializer/scripts/initializer-entrypoint)
#   pause                localhost/servekit/pause:3.10     from hack/image/pause.c (static; for containerd's sandbox_image)
#   base                 localhost/servekit/python-base:3.11-bookworm (buildah only: Debian's Python via mmdebstrap)
# In buildah's storage a name without a registry domain is kept under localhost/ (e.g.
# localhost/servekit/predictor:dev). To give an image to containerd, export it with
# `hack/image/export.sh REF FILE.tar` (REF as a pod spec writes it) and `ctr -n k8s.io images
# import FILE.tar`; see export.sh for the names containerd then shows.
#
# Builder: docker when a Docker engine answers, else buildah; SERVEKIT_IMAGE_BUILDER=docker|buildah
# forces one. buildah needs root, buildah and mmdebstrap: `sudo hack/image/install-tools.sh`.
# With buildah the Dockerfiles' base comes from Debian's packages (--build-arg PYTHON_IMAGE=base),
# since no registry is reachable; with docker they keep their own default base.
#
# Cache: each image carries a key (label io.servekit.build-key) hashed from everything that
# decides it (Dockerfile, pyproject.toml, predictor/, the base's ID and package list, these
# scripts; hack/image/cache-key.sh lists them); when the key matches, the build is skipped, so a warm run takes seconds. buildah's
# layer cache (--layers) makes a rebuild after a change redo only the steps after it.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=cache-key.sh
source "$(dirname "${BASH_SOURCE[0]}")/cache-key.sh"
# shellcheck source-path=SCRIPTDIR source=builder.sh
source "$(dirname "${BASH_SOURCE[0]}")/builder.sh"
# shellcheck source-path=SCRIPTDIR source=base.sh
source "$(dirname "${BASH_SOURCE[0]}")/base.sh"

readonly IMAGE_DIR="${SERVEKIT_ROOT}/hack/image"
readonly -A IMAGE_REFS=(
  [predictor]="servekit/predictor:dev"
  [canary-controller]="servekit/canary-controller:dev"
  [storage-initializer]="servekit/storage-initializer:dev"
  [pause]="localhost/servekit/pause:3.10"
)

force=false
images=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --force) force=true; shift ;;
    -h | --help) usage; exit 0 ;;
    predictor | canary-controller | storage-initializer | pause | base) images+=("$1"); shift ;;
    all) images+=(predictor canary-controller storage-initializer pause); shift ;;
    -*) usage_error "unknown option: $1" ;;
    *) usage_error "unknown image '$1': expected predictor, canary-controller, storage-initializer, pause, base or all" ;;
  esac
done
[[ ${#images[@]} -gt 0 ]] || usage_error "name at least one image (predictor, canary-controller, storage-initializer, pause, base or all)"

# up_to_date REF KEY: the image exists and was built from exactly these inputs.
up_to_date() {
  [[ "${force}" == false && "$(image_label "$1" "${BUILD_KEY_LABEL}")" == "$2" ]]
}

# ensure_base: with buildah, the base image is current; sets PYTHON_IMAGE_ARGS for the Dockerfiles
# and BASE_ID (part of their keys: a rebuilt base rebuilds them).
ensure_base() {
  PYTHON_IMAGE_ARGS=()
  BASE_ID="registry-default"
  [[ "${IMAGE_BUILDER}" == buildah ]] || return 0
  local key
  key="$(image_key base "$(base_key_inputs)")"
  if up_to_date "${BASE_IMAGE_REF}" "${key}"; then
    log "base: ${BASE_IMAGE_REF} is current (key ${key})"
  else
    require_tools mmdebstrap
    build_base_image "${key}"
  fi
  BASE_ID="$(image_id "${BASE_IMAGE_REF}")"
  PYTHON_IMAGE_ARGS=("PYTHON_IMAGE=${BASE_IMAGE_REF}")
}

# build_if_changed IMAGE CONTEXT DOCKERFILE TARGET KEY_EXTRA [BUILD_ARG...]: TARGET is the
# Dockerfile's stage to build, empty for its last one.
build_if_changed() {
  local image="$1" context="$2" dockerfile="$3" target="$4" extra="$5" ref key started=${SECONDS}
  shift 5
  ref="${IMAGE_REFS[${image}]}"
  key="$(image_key "${image}" "${extra}" "${IMAGE_BUILDER}")"
  if up_to_date "${ref}" "${key}"; then
    log "${image}: $(local_ref "${ref}") is current (key ${key}); nothing to build"
    return 0
  fi
  log "${image}: building $(local_ref "${ref}") with ${IMAGE_BUILDER} (key ${key})"
  build_image "${ref}" "${context}" "${dockerfile}" "${target}" "${key}" "$@"
  log "${image}: built $(local_ref "${ref}") in $((SECONDS - started))s, size $(image_size "${ref}")"
}

build_pause() {
  local context
  # The binary is compiled here (a static C program needs no toolchain in an image), in a
  # scratch context that holds only it and the Containerfile.
  require_tools gcc
  context="$(mktemp -d "${TMPDIR:-/tmp}/servekit-pause.XXXXXX")"
  SCRATCH_DIRS+=("${context}")
  gcc -static -Os -Wall -Wextra -Werror -o "${context}/pause" "${IMAGE_DIR}/pause.c"
  strip "${context}/pause"
  cp "${IMAGE_DIR}/pause.Containerfile" "${context}/Containerfile"
  build_if_changed pause "${context}" "${context}/Containerfile" "" "$(gcc -dumpfullversion)"
}

# Scratch folders, removed when the script exits however it ends.
SCRATCH_DIRS=()
trap 'rm -rf "${SCRATCH_DIRS[@]}"' EXIT

choose_builder
if [[ "${IMAGE_BUILDER}" == buildah && "$(id -u)" -ne 0 ]]; then
  die "buildah builds here need root (its storage is /var/lib/containers); run as root, or with a Docker engine"
fi
for image in "${images[@]}"; do
  case "${image}" in
    base)
      [[ "${IMAGE_BUILDER}" == buildah ]] || die "the base image is for buildah builds; with docker the Dockerfiles pull their own"
      ensure_base
      ;;
    predictor)
      ensure_base
      build_if_changed predictor "${SERVEKIT_ROOT}" "${SERVEKIT_ROOT}/Dockerfile" "" "${BASE_ID}" "${PYTHON_IMAGE_ARGS[@]}"
      ;;
    canary-controller)
      ensure_base
      build_if_changed canary-controller "${SERVEKIT_ROOT}" "${SERVEKIT_ROOT}/Dockerfile" controller "${BASE_ID}" \
        "${PYTHON_IMAGE_ARGS[@]}"
      ;;
    storage-initializer)
      ensure_base
      build_if_changed storage-initializer "${IMAGE_DIR}/storage-initializer" \
        "${IMAGE_DIR}/storage-initializer/Dockerfile" "" "${BASE_ID}" "${PYTHON_IMAGE_ARGS[@]}"
      ;;
    pause) build_pause ;;
  esac
done
