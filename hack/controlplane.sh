#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1, built from Go modules, for the cluster tests and
# for trying the chart and the overlays without Docker: etcd, kube-apiserver (PodSecurity
# admission on), kube-controller-manager, kube-scheduler, kwok with three simulated nodes (one with
# nvidia.com/gpu), KServe's controller manager with its admission webhooks, a gateway data plane
# serving KServe's Gateway (servekit-gateway), an S3 object store (versitygw), cluster DNS
# (CoreDNS), Prometheus, the CRDs of Gateway API, KEDA, Prometheus Operator and Knative Serving;
# and a real node (containerd, runc, CNI bridge, kubelet, kube-proxy) whose pods run real
# containers. Versions: hack/versions.env. See docs/controlplane.md.
#
# Usage: hack/controlplane.sh [--state-dir DIR] [--check] [--no-node] build|up|down|status
#        hack/controlplane.sh [--state-dir DIR] load-image REF
#        hack/controlplane.sh [--state-dir DIR] put-model DIR s3://BUCKET[/PREFIX]
#        hack/controlplane.sh [--state-dir DIR] s3-credentials NAMESPACE
#
#   build   build what is missing into the cache (once; later runs reuse it); with --check, only
#           say what is not built (exit 1 if anything is)
#   up      build what is missing, start everything, wait until it is usable; it prints
#           `export SERVEKIT_GATEWAY_URL=http://127.0.0.1:PORT` (KServe's Gateway, listener port 80),
#           `export SERVEKIT_S3_URL=http://127.0.0.1:PORT` (the object store),
#           `export SERVEKIT_DNS_SERVER=127.0.0.1:PORT` (cluster.local) and, last,
#           `export KUBECONFIG=PATH`:  eval "$(hack/controlplane.sh up)"
#           Already up: prints those lines again. Progress goes to stderr.
#           With POD_GATEWAY_IP set to an address of this host (the node's bridge), the object
#           store also listens on POD_GATEWAY_IP:<its port> and CoreDNS on POD_GATEWAY_IP:53.
#   down    stop every process `up` started and remove its state (certificates, etcd data): only
#           what `up` wrote, then the state folder if that leaves it empty
#   status  what runs, on which ports; exit 1 when the control plane is not up
#   load-image REF
#           put the image REF (built here: hack/image/build.sh) into the real node's containerd,
#           so pods with `image: REF` and imagePullPolicy IfNotPresent or Never run it
#   put-model DIR URI
#           upload every file of DIR under URI (s3://BUCKET[/PREFIX]) to the object store, making
#           the bucket when needed, for an InferenceService's storageUri: URI (needs boto3)
#   s3-credentials NAMESPACE
#           print the Secret (KServe's S3 annotations, the store's keys) and the ServiceAccount
#           servekit-s3 naming it, for NAMESPACE: | kubectl apply -f -, then serviceAccountName:
#           servekit-s3 in the predictor
#
#   --state-dir DIR  where certificates, etcd's data, logs and the kubeconfig live
#                    (default: $SERVEKIT_CONTROLPLANE_STATE, else .controlplane in the repository);
#                    made readable by this user only; up and down refuse a folder that is not
#                    empty and holds no control plane (exit 2)
#   --no-node        start without the real node (it needs root, containerd, runc and the CNI
#                    plugins: hack/install-test-tools.sh); pods then run on kwok's nodes only
#   -h, --help       show this help
#
# The build cache is $SERVEKIT_CONTROLPLANE_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/servekit/controlplane.
# CONTROLPLANE_NICE=N runs the builds under `nice -n N`.
# Needs go, kubectl, curl, openssl and python3.

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
# shellcheck source=controlplane/node.sh
source "${SERVEKIT_ROOT}/hack/controlplane/node.sh"
# shellcheck source=controlplane/prometheus.sh
source "${SERVEKIT_ROOT}/hack/controlplane/prometheus.sh"
# shellcheck source=controlplane/storage.sh
source "${SERVEKIT_ROOT}/hack/controlplane/storage.sh"
# shellcheck source=controlplane/dns.sh
source "${SERVEKIT_ROOT}/hack/controlplane/dns.sh"
# shellcheck source=controlplane/gateway.sh
source "${SERVEKIT_ROOT}/hack/controlplane/gateway.sh"

# stdout is for the `export KUBECONFIG=...` line that `eval` reads: progress goes to stderr.
LOG_FD=2

# Started in this order; etcd (the first) is stopped last.
readonly PROCESSES=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok kserve-controller-manager object-store coredns gateway prometheus prometheus-config)
# The real node's, started after the control plane and stopped before it (node.sh: stop_node).
readonly NODE_PROCESSES=(containerd kubelet kube-proxy)
readonly PORT_NAMES=(ETCD_PORT ETCD_PEER_PORT API_PORT KWOK_PORT KSERVE_WEBHOOK_PORT KSERVE_PROBE_PORT KSERVE_METRICS_PORT GATEWAY_PORT S3_PORT DNS_PORT DNS_READY_PORT
  KUBELET_PORT KUBELET_HEALTHZ_PORT KUBE_PROXY_HEALTHZ_PORT KUBE_PROXY_METRICS_PORT PROMETHEUS_PORT)
# Everything `up` writes into the state folder (processes.sh: pids, logs; pki.sh: pki, kubeconfig;
# kubernetes.sh: etcd, apiserver; addons.sh: kserve; storage.sh: s3; dns.sh: coredns; node.sh:
# node; prometheus.sh: prometheus): `down` removes these and nothing else, so a --state-dir that
# names a folder of the user's loses none of its files.
readonly STATE_ENTRIES=(pids logs pki etcd apiserver kserve s3 coredns node prometheus ports.env kubeconfig)

STATE_DIR="${SERVEKIT_CONTROLPLANE_STATE:-${SERVEKIT_ROOT}/.controlplane}"

# Commands that take words after them.
takes_arguments() {
  [[ "$1" == load-image || "$1" == put-model || "$1" == s3-credentials ]]
}

command=""
check_only=false
with_node=true
arguments=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --state-dir) need_value "$@"; STATE_DIR="$2"; shift 2 ;;
    --check) check_only=true; shift ;;
    --no-node) with_node=false; shift ;;
    -h | --help) usage; exit 0 ;;
    build | up | down | status | load-image | put-model | s3-credentials)
      if [[ -n "${command}" ]]; then
        takes_arguments "${command}" || usage_error "one command at a time, got '${command}' and '$1'"
        arguments+=("$1")
      else
        command="$1"
      fi
      shift
      ;;
    -*) usage_error "unknown argument: $1" ;;
    *)
      takes_arguments "${command}" || usage_error "unknown argument: $1"
      arguments+=("$1")
      shift
      ;;
  esac
done
[[ -n "${command}" ]] || usage_error "a command is required: build, up, down, status, load-image, put-model or s3-credentials"
case "${command}" in
  load-image) [[ ${#arguments[@]} -eq 1 ]] || usage_error "load-image takes one image reference (e.g. servekit/predictor:dev), got ${#arguments[@]} arguments" ;;
  put-model) [[ ${#arguments[@]} -eq 2 ]] || usage_error "put-model takes DIR and s3://BUCKET[/PREFIX], got ${#arguments[@]} arguments" ;;
  s3-credentials) [[ ${#arguments[@]} -eq 1 ]] || usage_error "s3-credentials takes NAMESPACE, got ${#arguments[@]} arguments" ;;
esac
if [[ "${check_only}" == true && "${command}" != build ]]; then
  usage_error "--check goes with build, not ${command}"
fi
if [[ "${with_node}" == false && "${command}" != up ]]; then
  usage_error "--no-node goes with up, not ${command}"
fi
mkdir -p "$(dirname "${STATE_DIR}")"
STATE_DIR="$(cd "$(dirname "${STATE_DIR}")" && pwd -P)/$(basename "${STATE_DIR}")"
KUBECONFIG_PATH="${STATE_DIR}/kubeconfig"
KUBECTL=(kubectl --kubeconfig="${KUBECONFIG_PATH}")
# Whether this control plane has the real node: asked for at `up`, known afterwards by its folder.
NODE_ENABLED=false
if [[ "${command}" == up && "${with_node}" == true ]] || [[ "${command}" != up && -d "${STATE_DIR}/node" ]]; then
  NODE_ENABLED=true
fi

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
  # shellcheck source=/dev/null
  source "${STATE_DIR}/ports.env"
  for name in $(expected_processes); do
    running_pid "${name}" >/dev/null || return 1
  done
  kube get --raw /readyz >/dev/null 2>&1
}

expected_processes() {
  echo "${PROCESSES[@]}"
  if [[ "${NODE_ENABLED}" == true ]]; then
    echo "${NODE_PROCESSES[@]}"
  fi
}

# The lines `eval "$(hack/controlplane.sh up)"` reads; KUBECONFIG last (the tests read that line).
print_exports() {
  # shellcheck source=/dev/null
  source "${STATE_DIR}/ports.env"
  echo "export SERVEKIT_GATEWAY_URL=$(gateway_url)"
  echo "export SERVEKIT_S3_URL=$(s3_url)"
  echo "export SERVEKIT_DNS_SERVER=$(dns_server)"
  echo "export SERVEKIT_PROMETHEUS_URL=http://127.0.0.1:${PROMETHEUS_PORT}"
  echo "export KUBECONFIG=${KUBECONFIG_PATH}"
}

cmd_up() {
  local started="${SECONDS}"
  require_tools kubectl curl openssl python3
  local reason
  if [[ "${NODE_ENABLED}" == true ]] && reason="$(node_unavailable_reason)" && [[ -n "${reason}" ]]; then
    die "${reason}; or start without the real node: hack/controlplane.sh up --no-node"
  fi
  if control_plane_up; then
    log "the control plane is already up (state: ${STATE_DIR})"
    print_exports
    return 0
  fi
  if [[ -d "${STATE_DIR}" ]]; then
    log "removing what is left of an earlier control plane"
    cmd_down
  fi
  if [[ "${NODE_ENABLED}" == true ]]; then
    claim_node_host
  fi
  build_all
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
  # The node first: its bridge carries the address where pods reach the object store and DNS.
  if [[ "${NODE_ENABLED}" == true ]]; then
    start_node
  fi
  start_object_store
  install_crds
  start_kserve
  start_dns
  start_gateway
  start_prometheus
  trap - EXIT
  rm -rf "${STATE_DIR}.failed-logs"
  log "the control plane is up in $(elapsed_since "${started}"): Kubernetes ${KUBERNETES_VERSION}, KServe ${KSERVE_VERSION}, versitygw ${VERSITYGW_VERSION}, CoreDNS ${COREDNS_VERSION} (state: ${STATE_DIR})"
  print_exports
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
  # The node first, while the API server can still take its pods off; then everything that talks
  # to etcd, etcd last, so none of them logs a lost store on its way out.
  stop_node
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
  for name in $(expected_processes); do
    if pid="$(running_pid "${name}")"; then
      printf '%-26s running (pid %s)\n' "${name}" "${pid}"
    else
      printf '%-26s not running (log: %s)\n' "${name}" "${STATE_DIR}/logs/${name}.log"
    fi
  done
  echo "ports: $(tr '\n' ' ' <"${STATE_DIR}/ports.env" 2>/dev/null)"
  control_plane_up || return 1
  kube get nodes
  print_exports
}

cmd_load_image() {
  control_plane_up || die "the control plane is not up (state: ${STATE_DIR}): run 'hack/controlplane.sh up' first"
  [[ "${NODE_ENABLED}" == true ]] || die "this control plane has no real node (it was started with --no-node)"
  load_image "$1"
}

case "${command}" in
  build) if [[ "${check_only}" == true ]]; then check_built; else build_all; fi ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  load-image) cmd_load_image "${arguments[@]}" ;;
  put-model) cmd_put_model "${arguments[@]}" ;;
  s3-credentials) cmd_s3_credentials "${arguments[@]}" ;;
esac
