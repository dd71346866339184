#!/usr/bin/env bash
# Write a built image to a docker-archive tar that `ctr -n k8s.io images import` accepts.
#
# Usage: hack/image/export.sh REF FILE.tar
#
#   REF          the image as a pod spec names it: servekit/predictor:dev,
#                servekit/storage-initializer:dev, localhost/servekit/pause:3.10
#   FILE.tar     the archive to write (its folder is made); skipped when FILE.tar.id says it
#                already holds this very image
#   -h, --help   show this help
#
# The archive carries REF exactly as given. containerd normalizes it on import the way the
# kubelet's CRI normalizes a pod's `image:`: a name without a registry domain
# (servekit/predictor:dev) gets the default registry's domain in front (`ctr images ls` shows
# <default-domain>/servekit/predictor:dev), which is the name a pod's `image: servekit/predictor:dev`
# resolves to, so with imagePullPolicy IfNotPresent or Never the kubelet finds it without a pull.
# A name with a domain (localhost/servekit/pause:3.10) stays as it is: use that one as
# containerd's sandbox_image.
#
# Archives for the harness: build.sh leaves images in the builder's storage; put archives in
# ${SERVEKIT_IMAGE_CACHE:-${XDG_CACHE_HOME:-~/.cache}/servekit/images}/ (NAME.tar), as
# `make image-archives` does.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=builder.sh
source "$(dirname "${BASH_SOURCE[0]}")/builder.sh"

positional=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    -*) usage_error "unknown option: $1" ;;
    *) positional+=("$1"); shift ;;
  esac
done
[[ ${#positional[@]} -eq 2 ]] || usage_error "expected REF and FILE.tar, got ${#positional[@]} argument(s): ${positional[*]:-none}"
ref="${positional[0]}"
archive="${positional[1]}"
[[ "${ref}" =~ ^[a-z0-9]([a-z0-9._/:-]*[a-z0-9])?:[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]] ||
  usage_error "REF '${ref}' is not NAME:TAG (e.g. servekit/predictor:dev)"
[[ "${archive}" == *.tar ]] || usage_error "FILE '${archive}' must end in .tar"

choose_builder
id="$(image_id "${ref}")"
[[ -n "${id}" ]] || die "no image $(local_ref "${ref}") in ${IMAGE_BUILDER}'s storage: build it with hack/image/build.sh (or 'make image')"

if [[ -s "${archive}" && "$(cat "${archive}.id" 2>/dev/null)" == "${id}" ]]; then
  log "${archive} already holds ${ref} (${id:0:12}); nothing to write"
  exit 0
fi

mkdir -p "$(dirname "${archive}")"
partial="${archive}.partial"
rm -f "${partial}" "${archive}.id"
case "${IMAGE_BUILDER}" in
  buildah) buildah push --quiet "$(local_ref "${ref}")" "docker-archive:${partial}:${ref}" >/dev/null ;;
  docker) docker save --output "${partial}" "${ref}" ;;
esac
# Renamed only when complete: an interrupted export never leaves a truncated archive behind.
mv "${partial}" "${archive}"
echo "${id}" >"${archive}.id"
log "wrote ${ref} (${id:0:12}) to ${archive} ($(du -h "${archive}" | cut -f1))"
