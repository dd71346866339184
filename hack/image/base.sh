#!/usr/bin/env bash
# The Python base image built from Debian's packages, for machines where the Dockerfiles' default
# base (the registry's python:3.11-slim-bookworm) cannot be pulled: Debian bookworm's Python 3.11
# (the same minor version, the same Debian release), made with mmdebstrap and imported into
# buildah's storage. Both stages of an image use it, as the Dockerfiles require.
#
# Usage: source hack/image/base.sh   (from hack/image/build.sh; not run on its own)
#
# The packages come from the host's apt sources ($SERVEKIT_APT_SOURCES, a deb822 .sources or a
# one-line sources.list file; default: the host's Debian sources), never from the image's own.

# shellcheck disable=SC2034 # read by build.sh
readonly BASE_IMAGE_REF="localhost/servekit/python-base:3.11-bookworm"
readonly BASE_SUITE="bookworm"
# What `python -m venv` and pip need, plus passwd for the Dockerfiles' groupadd/useradd and the CA
# bundle for pip's TLS. python-is-python3 gives the `python` the Dockerfiles call.
readonly -a BASE_PACKAGES=(python3 python3-venv python-is-python3 ca-certificates passwd)

base_apt_sources() {
  local candidate
  for candidate in "${SERVEKIT_APT_SOURCES:-}" /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    if [[ -n "${candidate}" && -s "${candidate}" ]]; then
      echo "${candidate}"
      return 0
    fi
  done
  die "no apt sources file for mmdebstrap (tried \$SERVEKIT_APT_SOURCES, /etc/apt/sources.list.d/debian.sources, /etc/apt/sources.list): set SERVEKIT_APT_SOURCES to a file that lists a Debian ${BASE_SUITE} mirror"
}

# base_key_inputs: what decides the base besides this file: the sources it is made from.
base_key_inputs() {
  sha256sum <"$(base_apt_sources)" | cut -c1-16
}

# build_base_image KEY: mmdebstrap a root filesystem, then commit it as BASE_IMAGE_REF with KEY
# in its build-key label.
build_base_image() {
  local key="$1" workdir sources container
  sources="$(base_apt_sources)"
  workdir="$(mktemp -d "${TMPDIR:-/tmp}/servekit-base.XXXXXX")"
  log "base: mmdebstrap ${BASE_SUITE} (apt variant) with ${BASE_PACKAGES[*]} from ${sources}"
  # Documentation, man pages and translations are left out, as in the slim images; the apt
  # lists are dropped (the image never runs apt-get update on its own). "$1" in the hook is
  # mmdebstrap's: the root filesystem being made.
  local include
  include="$(IFS=, && echo "${BASE_PACKAGES[*]}")"
  # shellcheck disable=SC2016 # expanded by mmdebstrap's hook shell, not here
  local -a options=(
    --quiet --variant=apt --include="${include}"
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*.log'
  )
  if ! mmdebstrap "${options[@]}" "${BASE_SUITE}" "${workdir}/rootfs.tar" "${sources}"; then
    rm -rf "${workdir}"
    die "mmdebstrap could not make the ${BASE_SUITE} root filesystem (see its messages above)"
  fi
  container="$(buildah from scratch)"
  # buildah add unpacks a local tar archive into the container's root.
  buildah add --quiet "${container}" "${workdir}/rootfs.tar" / >/dev/null
  rm -rf "${workdir}"
  # The environment the python images set, so Dockerfiles that extend ${PATH} keep the system one.
  buildah config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 \
    --cmd python3 \
    --label "${BUILD_KEY_LABEL}=${key}" \
    --label org.opencontainers.image.description="Debian ${BASE_SUITE} with ${BASE_PACKAGES[*]} (mmdebstrap)" \
    "${container}"
  buildah commit --quiet --rm "${container}" "${BASE_IMAGE_REF}" >/dev/null
  log "base: built ${BASE_IMAGE_REF}"
}
