#!/usr/bin/env bash
# Cache keys for hack/image/build.sh: a short hash of everything that decides an image, so a
# build whose key matches the image already built is skipped (a warm `make image` takes seconds)
# and any change to an input rebuilds. The key travels with the image as the label
# io.servekit.build-key: removing the image removes its key, so nothing can go stale.
#
# Usage: source hack/image/cache-key.sh   (from hack/image/build.sh; not run on its own)

# The label that carries an image's key.
# shellcheck disable=SC2034 # read by build.sh
BUILD_KEY_LABEL="io.servekit.build-key"

# files_hash PATH...: a hash of each file's path (relative to the repository) and contents, in a
# fixed order; Python byte code is skipped (it is never part of a build context). A missing path
# is an error: a key that silently ignored an input would never change with it.
files_hash() {
  local path
  for path in "$@"; do
    [[ -e "${SERVEKIT_ROOT}/${path}" ]] || die "cache key input ${path} does not exist under ${SERVEKIT_ROOT}"
  done
  (
    cd "${SERVEKIT_ROOT}" || exit 1
    find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.py[cod]' -print0 |
      LC_ALL=C sort -z | xargs -0 sha256sum
  ) | sha256sum | cut -c1-16
}

# text_hash STRING...: the same short hash of strings (build arguments, a base image's ID).
text_hash() {
  printf '%s\n' "$@" | sha256sum | cut -c1-16
}

# The inputs of each image, relative to the repository root. The scripts that build an image are
# inputs too: a change to how it is built must rebuild it.
# shellcheck disable=SC2034 # read by build.sh
readonly -A IMAGE_INPUTS=(
  [base]="hack/image/base.sh"
  [predictor]="Dockerfile .dockerignore pyproject.toml README.md predictor hack/image/build.sh hack/image/builder.sh"
  [canary-controller]="Dockerfile .dockerignore pyproject.toml README.md predictor hack/image/controller-requirements.py hack/image/build.sh hack/image/builder.sh"
  [storage-initializer]="hack/image/storage-initializer hack/image/build.sh hack/image/builder.sh"
  [pause]="hack/image/pause.c hack/image/pause.Containerfile hack/image/build.sh hack/image/builder.sh"
)

# image_key IMAGE EXTRA...: the key of IMAGE: its input files plus EXTRA strings (the base
# image's ID, build arguments, the builder's name).
image_key() {
  local image="$1"
  shift
  local -a inputs
  local files
  read -r -a inputs <<<"${IMAGE_INPUTS[${image}]:?unknown image ${image}}"
  # Assigned first: a failure inside "$(...)" as an argument would not stop anything.
  files="$(files_hash "${inputs[@]}")" || return 1
  text_hash "${files}" "$@"
}
