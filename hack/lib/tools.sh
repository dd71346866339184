#!/usr/bin/env bash
# Tools: a missing tool named with how to install it, a Docker engine that does not answer, a
# version other than the pinned one.
#
# Usage: sourced by hack/lib.sh (with the rest of the library); not run on its own.


tool_hint() {
  case "$1" in
    docker) echo "install Docker Engine (https://docs.docker.com/engine/install/)" ;;
    kind) echo "install kind ${KIND_VERSION:-v0.30.0} (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)" ;;
    kubectl) echo "install kubectl >= 1.29 (https://kubernetes.io/docs/tasks/tools/)" ;;
    helm) echo "install Helm ${HELM_VERSION:-v3.16.3} (https://helm.sh/docs/intro/install/)" ;;
    curl) echo "install curl with your system's package manager" ;;
    python3) echo "install Python 3 (the answers are checked with its json module)" ;;
    *) echo "install it and put it on PATH" ;;
  esac
}

# require_tools TOOL...: every missing tool is reported, then exit 1.
require_tools() {
  local tool missing=0
  for tool in "$@"; do
    if ! command -v "${tool}" >/dev/null 2>&1; then
      printf '%s: error: %s is required: %s\n' "${SCRIPT_NAME}" "${tool}" "$(tool_hint "${tool}")" >&2
      missing=1
    fi
  done
  if [[ "${missing}" -ne 0 ]]; then
    exit 1
  fi
}

# The docker client is not enough: kind and docker build need a running engine.
require_docker_engine() {
  require_tools docker
  local problem
  if ! problem="$(docker info --format '{{.ServerVersion}}' 2>&1)"; then
    die "docker is required: the docker client is installed but no engine answers ('docker info' failed: $(printf '%s' "${problem}" | tail -n 1)); start Docker or set DOCKER_HOST"
  fi
}

# warn_if_version_differs TOOL ACTUAL PINNED: other versions usually work; say which one is tested.
warn_if_version_differs() {
  local tool="$1" actual="$2" pinned="$3"
  if [[ "${actual}" != "${pinned}"* ]]; then
    warn "${tool} ${actual:-of unknown version} found; servekit is tested with ${tool} ${pinned}"
  fi
}

# install_debian_packages CHECK_ONLY PACKAGE...: the packages named (the missing ones), installed
# with apt-get as root; with CHECK_ONLY=true, or without apt-get or root, exit 1 naming them and
# how to install them. Nothing named: nothing to do.
install_debian_packages() {
  local check_only="$1"
  shift
  [[ $# -gt 0 ]] || return 0
  if [[ "${check_only}" == true ]]; then
    die "missing: $* (apt-get install $*)"
  fi
  if ! command -v apt-get >/dev/null 2>&1 || [[ "$(id -u)" -ne 0 ]]; then
    die "missing: $*; install them with your package manager (Debian: sudo apt-get install $*)"
  fi
  log "installing $* with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  log "installed $*"
}
