#!/usr/bin/env bash
# Building the control plane's components from their Go modules, for hack/controlplane.sh.
#
# Usage: source "$(dirname "${BASH_SOURCE[0]}")/controlplane/build.sh"   (not run on its own)
#
# Each component is a small Go module of ours under hack/controlplane/<component>/ (go.mod and
# go.sum committed) that requires the upstream module at the pinned version and names its main
# packages with `tool` lines; their dependency graphs conflict, so they cannot share one module.
# Binaries go to a cache outside the repository, one folder per component keyed by a hash of
# everything that decides the build (go.mod, go.sum, our own .go files, the Go version, the
# flags), so a later `up` reuses them and a changed pin builds afresh.
set -euo pipefail

# component -> the binaries its build leaves in the cache
declare -rA COMPONENT_BINARIES=(
  [kube]="etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy"
  [kwok]="kwok"
  [kserve]="manager"
  [versitygw]="versitygw"
  [coredns]="coredns"
  [gateway]="servekit-gateway"
)
# component -> the packages `go build` builds: its `tool` lines, and main packages of ours.
declare -rA COMPONENT_PACKAGES=(
  [kube]="tool ./etcd"
  [kwok]="tool"
  [kserve]="tool"
  [versitygw]="tool"
  [coredns]="./coredns"
  [gateway]="./servekit-gateway"
)
# Built in this order: the longest first, so a broken pin elsewhere shows up after the long pole
# has been cached.
readonly COMPONENTS=(kube kwok kserve versitygw coredns gateway)
readonly GO_BUILD_FLAGS=(-trimpath)

# component -> "module=VERSION_VARIABLE ..." that its go.mod must require at the pinned version
declare -rA COMPONENT_PINS=(
  [kube]="k8s.io/kubernetes=KUBERNETES_VERSION go.etcd.io/etcd/server/v3=ETCD_VERSION"
  [kwok]="sigs.k8s.io/kwok=KWOK_VERSION"
  [kserve]="github.com/kserve/kserve=KSERVE_VERSION sigs.k8s.io/gateway-api=GATEWAY_API_VERSION github.com/kedacore/keda/v2=KEDA_VERSION knative.dev/serving=KNATIVE_SERVING_VERSION"
  [versitygw]="github.com/versity/versitygw=VERSITYGW_VERSION"
  [coredns]="github.com/coredns/coredns=COREDNS_VERSION"
  [gateway]="sigs.k8s.io/gateway-api=GATEWAY_API_VERSION"
)

# -ldflags of a component: stripped, plus the version stamps Kubernetes' own build sets (without
# them the API server reports v0.0.0, and Helm refuses charts with a kubeVersion constraint).
component_ldflags() {
  local flags="-s -w" minor package variable
  if [[ "$1" == kube ]]; then
    minor="${KUBERNETES_VERSION#v1.}"
    minor="${minor%%.*}"
    for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      for variable in "gitVersion=${KUBERNETES_VERSION}" gitMajor=1 "gitMinor=${minor}" gitTreeState=clean; do
        flags+=" -X ${package}.${variable}"
      done
    done
  fi
  echo "${flags}"
}

CONTROLPLANE_MODULES="${SERVEKIT_ROOT}/hack/controlplane"
CONTROLPLANE_CACHE="${SERVEKIT_CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/servekit/controlplane}"

require_go() {
  if ! command -v go >/dev/null 2>&1; then
    die "go is required to build the control plane from its Go modules: install Go >= 1.26.4 (https://go.dev/dl/; the newest go.mod here asks for it) and make sure the Go module proxy is reachable"
  fi
}

# The version a go.mod requires of a module, empty when it does not.
required_version() {
  local gomod="$1" module="$2"
  awk -v m="${module}" '
    $1 == "require" && $2 == m { print $3; exit }
    $1 == m && $2 ~ /^v/ { print $2; exit }' "${gomod}"
}

# Every go.mod requires exactly the versions hack/versions.env pins: one place decides.
check_pins() {
  local component="$1" pin module variable actual problems=()
  for pin in ${COMPONENT_PINS[${component}]}; do
    module="${pin%%=*}"
    variable="${pin#*=}"
    actual="$(required_version "${CONTROLPLANE_MODULES}/${component}/go.mod" "${module}")"
    if [[ "${actual}" != "${!variable}" ]]; then
      problems+=("hack/controlplane/${component}/go.mod requires ${module} ${actual:-(nothing)}, hack/versions.env pins ${variable}=${!variable}")
    fi
  done
  if [[ ${#problems[@]} -gt 0 ]]; then
    printf '%s: error: %s\n' "${SCRIPT_NAME}" "${problems[@]}" >&2
    die "change the pin in one place and run 'go mod tidy' in hack/controlplane/${component}"
  fi
}

component_key() {
  local component="$1" dir="${CONTROLPLANE_MODULES}/$1"
  {
    go env GOVERSION GOOS GOARCH
    printf '%s\n' "${GO_BUILD_FLAGS[@]}" "$(component_ldflags "${component}")" "CGO_ENABLED=0"
    find "${dir}" -type f \( -name go.mod -o -name go.sum -o -name '*.go' \) -print0 | sort -z | xargs -0 sha256sum |
      sed "s|${dir}/||"
  } | sha256sum | cut -c1-16
}

component_bin_dir() {
  echo "${CONTROLPLANE_CACHE}/$1-$(component_key "$1")"
}

component_built() {
  local dir binary
  dir="$(component_bin_dir "$1")"
  for binary in ${COMPONENT_BINARIES[$1]}; do
    [[ -x "${dir}/${binary}" ]] || return 1
  done
}

# go build in the background with a line every 30 s, so CI logs show it is alive.
run_go_build() {
  local component="$1" out="$2" build_log="$3" pid started="${SECONDS}" packages
  read -ra packages <<<"${COMPONENT_PACKAGES[${component}]}"
  (
    cd "${CONTROLPLANE_MODULES}/${component}"
    # No VCS stamp: the binaries are keyed by their pins, not by this checkout's commit.
    export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
    exec ${CONTROLPLANE_NICE:+nice -n "${CONTROLPLANE_NICE}"} go build "${GO_BUILD_FLAGS[@]}" \
      -ldflags="$(component_ldflags "${component}")" -o "${out}/" "${packages[@]}"
  ) >"${build_log}" 2>&1 &
  pid=$!
  while ! wait_for_exit "${pid}" 30; do
    log "still building ${component} ($(elapsed_since "${started}"))"
  done
  wait "${pid}"
}

# wait_for_exit PID SECONDS: true once PID has exited, false if it still runs after SECONDS.
wait_for_exit() {
  local pid="$1" deadline=$((SECONDS + $2))
  while kill -0 "${pid}" 2>/dev/null; do
    if [[ "${SECONDS}" -ge "${deadline}" ]]; then
      return 1
    fi
    sleep 1
  done
}

elapsed_since() {
  local seconds=$((SECONDS - $1))
  printf '%dm%02ds' $((seconds / 60)) $((seconds % 60))
}

build_component() {
  local component="$1" bin_dir build_log tmp started="${SECONDS}"
  check_pins "${component}"
  bin_dir="$(component_bin_dir "${component}")"
  if component_built "${component}"; then
    log "${component}: built (${bin_dir})"
    return 0
  fi
  mkdir -p "${CONTROLPLANE_CACHE}/logs"
  build_log="${CONTROLPLANE_CACHE}/logs/$(basename "${bin_dir}").log"
  tmp="$(mktemp -d "${CONTROLPLANE_CACHE}/.${component}.XXXXXX")"
  log "building ${component} (${COMPONENT_BINARIES[${component}]}) from Go modules; log: ${build_log}"
  if ! run_go_build "${component}" "${tmp}" "${build_log}"; then
    rm -rf "${tmp}"
    tail -n 20 "${build_log}" >&2 || true
    die "building ${component} failed after $(elapsed_since "${started}"); the whole log: ${build_log}"
  fi
  # The binaries appear all at once; a build that finished first elsewhere (another checkout)
  # is kept.
  rm -rf "${bin_dir}"
  mv -T "${tmp}" "${bin_dir}" 2>/dev/null || rm -rf "${tmp}"
  component_built "${component}" || die "${bin_dir} lacks binaries after building ${component}: see ${build_log}"
  log "built ${component} in $(elapsed_since "${started}")"
}

build_all() {
  local component started="${SECONDS}"
  require_go
  for component in "${COMPONENTS[@]}"; do
    build_component "${component}"
  done
  log "every component is built ($(elapsed_since "${started}")); cache: ${CONTROLPLANE_CACHE}"
}

check_built() {
  local component missing=()
  require_go
  for component in "${COMPONENTS[@]}"; do
    component_built "${component}" || missing+=("${component}")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    die "not built: ${missing[*]} (run 'hack/controlplane.sh build' or 'make cluster-build'; the first build takes a while)"
  fi
  log "every component is built (cache: ${CONTROLPLANE_CACHE})"
}

# The path of a built binary; dies when its component is not built.
binary_path() {
  local component="$1" binary="$2" path
  path="$(component_bin_dir "${component}")/${binary}"
  [[ -x "${path}" ]] || die "${binary} is not built: run 'hack/controlplane.sh build'"
  echo "${path}"
}
