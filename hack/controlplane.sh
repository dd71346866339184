#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1, built from Go modules, for the cluster tests and
# for trying the chart and the overlays without Docker: etcd, kube-apiserver (PodSecurity
# admission on), kube-controller-manager, kube-scheduler, kwok with three simulated nodes (one with
# nvidia.com/gpu), KServe's controller manager with its admission webhooks, Envoy Gateway's
# controller with KServe's Gateway, and the CRDs of Gateway API, KEDA, Prometheus Operator and
# Knative Serving. Versions: hack/versions.env. See docs/controlplane.md.
#
# Usage: hack/controlplane.sh [--state-dir DIR] [--check] build|up|down|status
#
#   build   build what is missing into the cache (once; later runs reuse it); with --check, only
#           say what is not built (exit 1 if anything is)
#   up      build what is missing, start everything, wait until it is usable; the last line of
#           its output is `export KUBECONFIG=PATH`:  eval "$(hack/controlplane.sh up)"
#           Already up: prints that line again. Progress goes to stderr.
#   down    stop every process `up` started and remove its state (certificates, etcd data): only
#           what `up` wrote, then the state folder if that leaves it empty
#   status  what runs, on which ports; exit 1 when the control plane is not up
#
#   --state-dir DIR  where certificates, etcd's data, logs and the kubeconfig live
#                    (default: $SERVEKIT_CONTROLPLANE_STATE, else .controlplane in the repository);
#                    made readable by this user only; up and down refuse a folder that is not
#                    empty and holds no control plane (exit 2)
#   -h, --help       show this help
#
# The build cache is $SERVEKIT_CONTROLPLANE_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/servekit/controlplane.
# CONTROLPLANE_NICE=N runs the builds under `nice -n N`.
# Needs go, kubectl, curl, openssl, python3 and unshare.

# shellcheck source-path=SCRIPTDIR
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck disable=SC1091 # plain NAME=value lines, nothing to follow
source "${SERVEKIT_ROOT}/hack/versions.env"
# shellcheck source=controlplane/build.sh
source "${SERVEKIT_ROOT}/hack/controlplane/build.sh"
# shellcheck source=controlplane/processes.sh
source "${SERVEKIT_ROOT}/hack/controlplane/processes.sh"
# shellcheck source=controlplane/pki.sh
source "${SERVEKIT_ROOT}/hack/controlplane/pki.sh"
# shellcheck source=controlplane/kubernetes.sh
source "${SERVEKIT_ROOT}/hack/controlplane/kubernetes.sh"
# shellcheck source=controlplane/addons.sh
source "${SERVEKIT_ROOT}/hack/controlplane/addons.sh"

# stdout is for the `export KUBECONFIG=...` line that `eval` reads: progress goes to stderr.
log() {
  printf '%s: %s\n' "${SCRIPT_NAME}" "$*" >&2
}

# Started in this order; etcd (the first) is stopped last.
readonly PROCESSES=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok kserve-controller-manager envoy-gateway)
# Envoy Gateway's controller listens on these whatever its configuration says: xDS, the
# controller's health probe, the topology webhook, the Wasm module cache, controller-runtime's metrics.
# shellcheck disable=SC2034 # read by addons.sh
readonly ENVOY_GATEWAY_FIXED_PORTS=(18000 18002 8080 8081 9443)
readonly PORT_NAMES=(ETCD_PORT ETCD_PEER_PORT API_PORT KWOK_PORT KSERVE_WEBHOOK_PORT KSERVE_PROBE_PORT KSERVE_METRICS_PORT ENVOY_GATEWAY_ADMIN_PORT)
# Everything `up` writes into the state folder (processes.sh: pids, logs; pki.sh: pki, kubeconfig;
# kubernetes.sh: etcd, apiserver; addons.sh: kserve, envoy-gateway): `down` removes these and
# nothing else, so a --state-dir that names a folder of the user's loses none of its files.
readonly STATE_ENTRIES=(pids logs pki etcd apiserver kserve envoy-gateway ports.env kubeconfig)

STATE_DIR="${SERVEKIT_CONTROLPLANE_STATE:-${SERVEKIT_ROOT}/.controlplane}"
command=""
check_only=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --state-dir) need_value "$@"; STATE_DIR="$2"; shift 2 ;;
    --check) check_only=true; shift ;;
    -h | --help) usage; exit 0 ;;
    build | up | down | status)
      [[ -z "${command}" ]] || usage_error "one command at a time, got '${command}' and '$1'"
      command="$1"
      shift
      ;;
    *) usage_error "unknown argument: $1" ;;
  esac
done
[[ -n "${command}" ]] || usage_error "a command is required: build, up, down or status"
if [[ "${check_only}" == true && "${command}" != build ]]; then
  usage_error "--check goes with build, not ${command}"
fi
mkdir -p "$(dirname "${STATE_DIR}")"
STATE_DIR="$(cd "$(dirname "${STATE_DIR}")" && pwd -P)/$(basename "${STATE_DIR}")"
KUBECONFIG_PATH="${STATE_DIR}/kubeconfig"
KUBECTL=(kubectl --kubeconfig="${KUBECONFIG_PATH}")

# up and down write and remove in the state folder: one that is not empty must be one that `up`
# made (ports.env is its first file, pids/ holds what it started).
if [[ "${command}" == up || "${command}" == down ]] && [[ -d "${STATE_DIR}" && -n "$(ls -A "${STATE_DIR}")" ]] &&
  [[ ! -e "${STATE_DIR}/ports.env" && ! -d "${STATE_DIR}/pids" ]]; then
  usage_error "the state folder ${STATE_DIR} is not empty and holds no control plane (no ports.env, no pids/): give --state-dir a new or empty folder"
fi

allocate_ports() {
  local ports name i=0
  mapfile -t ports < <(free_ports "${#PORT_NAMES[@]}")
  : >"${STATE_DIR}/ports.env"
  for name in "${PORT_NAMES[@]}"; do
    printf '%s=%s\n' "${name}" "${ports[i]}" >>"${STATE_DIR}/ports.env"
    i=$((i + 1))
  done
  # shellcheck source=/dev/null
  source "${STATE_DIR}/ports.env"
}

# Up means: every process runs and the API server answers.
control_plane_up() {
  local name
  [[ -f "${STATE_DIR}/ports.env" && -f "${KUBECONFIG_PATH}" ]] || return 1
  for name in "${PROCESSES[@]}"; do
    running_pid "${name}" >/dev/null || return 1
  done
  kube get --raw /readyz >/dev/null 2>&1
}

cmd_up() {
  local started="${SECONDS}"
  require_tools kubectl curl openssl python3
  if control_plane_up; then
    log "the control plane is already up (state: ${STATE_DIR})"
    echo "export KUBECONFIG=${KUBECONFIG_PATH}"
    return 0
  fi
  if [[ -d "${STATE_DIR}" ]]; then
    log "removing what is left of an earlier control plane"
    cmd_down
  fi
  build_all
  require_envoy_gateway_ports
  # Keys, the admin kubeconfig and etcd's data: for this user only, on a shared machine too.
  umask 077
  make_state_dir
  allocate_ports
  make_pki "${STATE_DIR}/pki"
  write_kubeconfig "${KUBECONFIG_PATH}" "https://127.0.0.1:${API_PORT}" "${STATE_DIR}/pki"
  # A failure half-way (die exits) leaves running processes: take them down with it, unless asked
  # to keep them for a look (SERVEKIT_CONTROLPLANE_KEEP_FAILED=1).
  trap 'stop_after_failed_up' EXIT
  start_kubernetes
  install_crds
  start_kserve
  start_envoy_gateway
  trap - EXIT
  rm -rf "${STATE_DIR}.failed-logs"
  log "the control plane is up in $(elapsed_since "${started}"): Kubernetes ${KUBERNETES_VERSION}, KServe ${KSERVE_VERSION}, Envoy Gateway ${ENVOY_GATEWAY_VERSION} (state: ${STATE_DIR})"
  echo "export KUBECONFIG=${KUBECONFIG_PATH}"
}

stop_after_failed_up() {
  if [[ "${SERVEKIT_CONTROLPLANE_KEEP_FAILED:-0}" == 1 ]]; then
    log "up failed; the processes are left running for a look: hack/controlplane.sh down stops them"
    return
  fi
  log "up failed: stopping what it started (logs kept in ${STATE_DIR}.failed-logs)"
  rm -rf "${STATE_DIR}.failed-logs"
  cp -r "${STATE_DIR}/logs" "${STATE_DIR}.failed-logs" 2>/dev/null || true
  cmd_down
}

cmd_down() {
  # Everything that talks to etcd first, etcd last, so none of them logs a lost store on its way out.
  stop_processes "${PROCESSES[@]:1}"
  stop_processes etcd
  local entry
  for entry in "${STATE_ENTRIES[@]}"; do
    rm -rf "${STATE_DIR:?}/${entry}"
  done
  if [[ -d "${STATE_DIR}" ]] && ! rmdir "${STATE_DIR}" 2>/dev/null; then
    warn "kept ${STATE_DIR}: it holds files the control plane did not write"
  fi
  log "the control plane is down"
}

cmd_status() {
  local name pid
  if [[ ! -d "${STATE_DIR}" ]]; then
    log "the control plane is down (no ${STATE_DIR})"
    return 1
  fi
  for name in "${PROCESSES[@]}"; do
    if pid="$(running_pid "${name}")"; then
      printf '%-26s running (pid %s)\n' "${name}" "${pid}"
    else
      printf '%-26s not running (log: %s)\n' "${name}" "${STATE_DIR}/logs/${name}.log"
    fi
  done
  echo "ports: $(tr '\n' ' ' <"${STATE_DIR}/ports.env" 2>/dev/null)"
  control_plane_up || return 1
  kube get nodes
  echo "export KUBECONFIG=${KUBECONFIG_PATH}"
}

case "${command}" in
  build) if [[ "${check_only}" == true ]]; then check_built; else build_all; fi ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
esac
