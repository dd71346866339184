#!/usr/bin/env bash
# The image builder behind hack/image/build.sh: `docker build` when a Docker engine answers,
# else buildah (daemonless, needs root here). SERVEKIT_IMAGE_BUILDER=docker|buildah forces one.
#
# Usage: source hack/image/builder.sh   (from hack/image/build.sh and export.sh; not run on its own)

IMAGE_BUILDER=""

# choose_builder: sets IMAGE_BUILDER, or dies naming what is missing.
choose_builder() {
  local wanted="${SERVEKIT_IMAGE_BUILDER:-auto}"
  case "${wanted}" in
    auto)
      if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        IMAGE_BUILDER=docker
      elif command -v buildah >/dev/null 2>&1; then
        IMAGE_BUILDER=buildah
      else
        die "no image builder: no Docker engine answers and buildah is not installed (run 'sudo hack/image/install-tools.sh', or start Docker)"
      fi
      ;;
    docker) require_docker_engine; IMAGE_BUILDER=docker ;;
    buildah) require_tools buildah; IMAGE_BUILDER=buildah ;;
    *) die "SERVEKIT_IMAGE_BUILDER is '${wanted}'; expected auto, docker or buildah" ;;
  esac
}

# local_ref REF: the name an image has in the builder's storage. buildah stores a name without a
# registry domain under localhost/; docker keeps it as written.
local_ref() {
  local ref="$1" first="${1%%/*}"
  if [[ "${IMAGE_BUILDER}" == buildah && ("${ref}" != */* || ! ("${first}" == localhost || "${first}" == *.* || "${first}" == *:*)) ]]; then
    echo "localhost/${ref}"
  else
    echo "${ref}"
  fi
}

# image_label REF LABEL: the label's value, empty when the image or the label is missing.
image_label() {
  local ref
  ref="$(local_ref "$1")"
  case "${IMAGE_BUILDER}" in
    docker) docker image inspect --format "{{index .Config.Labels \"$2\"}}" "${ref}" 2>/dev/null || true ;;
    buildah) buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$2\"}}" "${ref}" 2>/dev/null || true ;;
  esac
}

# image_id REF: the image's ID (empty when missing).
image_id() {
  local ref
  ref="$(local_ref "$1")"
  case "${IMAGE_BUILDER}" in
    docker) docker image inspect --format '{{.Id}}' "${ref}" 2>/dev/null || true ;;
    buildah) buildah inspect --type image --format '{{.FromImageID}}' "${ref}" 2>/dev/null || true ;;
  esac
}

# image_size REF: the unpacked size as the builder reports it (buildah: "250 MB"; docker: bytes).
image_size() {
  local ref bytes
  ref="$(local_ref "$1")"
  case "${IMAGE_BUILDER}" in
    docker) bytes="$(docker image inspect --format '{{.Size}}' "${ref}")" ;;
    buildah) bytes="$(buildah images --format '{{.Size}}' --noheading "${ref}" 2>/dev/null | head -n 1)" ;;
  esac
  echo "${bytes}"
}

# build_image REF CONTEXT DOCKERFILE TARGET KEY [BUILD_ARG...]: build REF from the Dockerfile's stage
# TARGET (empty: its last stage), its key in the build-key label.
# buildah: layers cached (--layers) for warm rebuilds; --pull=never, so nothing is fetched from a
# registry (the Dockerfiles' default base stage is unused when PYTHON_IMAGE names our base, and
# buildah skips unused stages); RUN steps use the host's network (pip reaches the package index;
# no CNI network is set up that could meet the node's). The host's CA bundle is bind-mounted
# where Debian's pip reads it, for RUN steps only: behind a proxy that re-signs TLS (CI machines,
# corporate networks) pip trusts what the host trusts, and no certificate is committed to an image.
# SERVEKIT_BUILD_CA_BUNDLE names another bundle; an empty value mounts none.
build_image() {
  local ref="$1" context="$2" dockerfile="$3" target="$4" key="$5"
  shift 5
  local -a args=(--file "${dockerfile}" --tag "$(local_ref "${ref}")" --label "${BUILD_KEY_LABEL}=${key}")
  if [[ -n "${target}" ]]; then
    args+=(--target "${target}")
  fi
  local build_arg
  for build_arg in "$@"; do
    args+=(--build-arg "${build_arg}")
  done
  case "${IMAGE_BUILDER}" in
    docker) docker build "${args[@]}" "${context}" ;;
    buildah)
      local ca_bundle="${SERVEKIT_BUILD_CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}"
      if [[ -n "${ca_bundle}" ]]; then
        [[ -s "${ca_bundle}" ]] || die "SERVEKIT_BUILD_CA_BUNDLE '${ca_bundle}' is not a CA bundle file"
        args+=(--volume "${ca_bundle}:/etc/ssl/certs/ca-certificates.crt:ro")
      fi
      buildah build --layers --pull=never --skip-unused-stages=true --network host \
        --format oci "${args[@]}" "${context}"
      ;;
  esac
}
