#!/usr/bin/env bash
# The real node of the control plane, for hack/controlplane.sh: containerd and runc (Debian's
# packages), the CNI plugins (Debian's containernetworking-plugins), and the kubelet and kube-proxy
# built from k8s.io/kubernetes at the pinned version. Pods on it run real containers.
#
# Usage: source "$(dirname "${BASH_SOURCE[0]}")/controlplane/node.sh"   (not run on its own)
#
# The pod network is one Linux bridge, ${NODE_BRIDGE}, with the node's pods on ${NODE_POD_CIDR}
# and the host at ${POD_GATEWAY_IP}. It stays on this machine: pods get no default route (only the
# pod range and the Service range), the bridge masquerades nothing, and a firewall chain of ours
# drops every forwarded packet that does not both enter and leave the bridge. The host reaches pods
# directly (the gateway, Prometheus and the tests send to pod addresses), pods reach the host's
# services at ${POD_GATEWAY_IP} (cluster DNS, the object store, the kubelet).
#
# One node per machine: the bridge, the pod range and /var/run/netns are the machine's. `down`
# removes every container, mount, network namespace, cgroup, firewall rule and link `up` made;
# tests/cluster/test_node.py checks that nothing is left.
set -euo pipefail

readonly NODE_NAME="servekit-node"
readonly NODE_BRIDGE="servekit0"
readonly NODE_POD_CIDR="10.246.0.0/24"
# The bridge's (the host's) address on the pod network; the node's InternalIP.
readonly POD_GATEWAY_IP="10.246.0.1"
# Only pods that ask for the real node land on it (this label in a nodeSelector, a toleration of
# the NoSchedule taint of the same key and value): the kwok nodes keep every other test's pods.
readonly NODE_LABEL_KEY="servekit.dev/node"
readonly NODE_LABEL_VALUE="real"
# Built here (hack/image/), never pulled: containerd's CRI starts every pod with it.
readonly SANDBOX_IMAGE="localhost/servekit/pause:3.10"
readonly CNI_NETWORK="servekit"
readonly CNI_BIN_DIR="/usr/lib/cni"
readonly NODE_FIREWALL_CHAIN="SERVEKIT-NODE"
readonly NODE_OUTPUT_CHAIN="SERVEKIT-NODE-OUTPUT"
readonly NETNS_DIR="/var/run/netns"
# kubelet's own names for its cgroup subtree and the links it keeps for log shippers.
readonly KUBELET_CGROUP_ROOT="/servekit-node"
readonly CONTAINER_LOG_LINKS="/var/log/containers"
# What `up` made in the machine's shared places, recorded as it goes so `down` removes exactly it.
readonly NODE_RECORD="node"

node_dir() {
  echo "${STATE_DIR}/node"
}

# containerd's and the kubelet's sockets, in short fixed folders: a unix socket path may not
# exceed 104 bytes, which a state folder under a deep temporary path does. One node per machine,
# so one of each; `down` removes both.
readonly CONTAINERD_SOCKET_DIR="/run/servekit-node"
readonly KUBELET_ROOT_DIR="/var/lib/servekit-node/kubelet"

containerd_address() {
  echo "${CONTAINERD_SOCKET_DIR}/containerd.sock"
}

ctr_k8s() {
  ctr --address "$(containerd_address)" --namespace k8s.io "$@"
}

# Why this machine cannot run the node, or nothing when it can.
node_unavailable_reason() {
  local tool missing=()
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "the real node needs root (containerd, the pod network, cgroups)"
    return
  fi
  for tool in containerd containerd-shim-runc-v2 runc ctr ip iptables iptables-save ip6tables-save findmnt; do
    command -v "${tool}" >/dev/null 2>&1 || missing+=("${tool}")
  done
  for tool in bridge host-local loopback portmap; do
    [[ -x "${CNI_BIN_DIR}/${tool}" ]] || missing+=("${CNI_BIN_DIR}/${tool}")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    echo "missing ${missing[*]} (hack/install-test-tools.sh installs them from Debian: containerd, runc, containernetworking-plugins, iptables)"
  fi
}

# ---------------------------------------------------------------------------------------------
# One node per machine: who owns it

# The bridge's alias names the state folder of the control plane that made it.
readonly BRIDGE_ALIAS_PREFIX="servekit-node state="

# The state folder of the control plane whose node made the bridge; nothing when there is no
# bridge or it does not say (one made before the alias was written).
bridge_owner() {
  local alias
  alias="$(cat "/sys/class/net/${NODE_BRIDGE}/ifalias" 2>/dev/null)" || return 0
  [[ "${alias}" == "${BRIDGE_ALIAS_PREFIX}"* ]] && echo "${alias#"${BRIDGE_ALIAS_PREFIX}"}"
  return 0
}

# Whether the control plane in state folder $1 still runs its node.
node_running_in() {
  (STATE_DIR="$1" && { running_pid containerd || running_pid kubelet; } >/dev/null)
}

node_owner_conflict() {
  local owner
  owner="$(bridge_owner)"
  echo "the bridge ${NODE_BRIDGE} already exists: the node of the control plane in ${owner:-an unknown state folder} runs on this machine (one node per machine); stop it with 'hack/controlplane.sh --state-dir ${owner:-DIR} down', or start this one with --no-node"
}

# Before `up` makes its node: a node whose control plane still runs is refused; one whose
# processes are gone (killed, or its session ended without `down`) has its machine-wide parts
# removed, so that a crash does not block every later `up` on this machine.
claim_node_host() {
  local owner
  ip link show "${NODE_BRIDGE}" >/dev/null 2>&1 || return 0
  owner="$(bridge_owner)"
  if [[ -n "${owner}" ]] && node_running_in "${owner}"; then
    die "$(node_owner_conflict)"
  fi
  if [[ -z "${owner}" ]] && ctr --address "$(containerd_address)" version >/dev/null 2>&1; then
    die "$(node_owner_conflict)"
  fi
  warn "removing the node a stopped control plane left on this machine (its state: ${owner:-unknown})"
  if [[ -n "${owner}" && -f "${owner}/node/${NODE_RECORD}/bridge" ]]; then
    # shellcheck disable=SC2030 # in a subshell on purpose: the other control plane's folder
    (STATE_DIR="${owner}" && remove_node_leftovers)
  else
    remove_orphan_node
  fi
}

# What a node whose state folder is unknown left in the machine's shared places, with our chains
# and the bridge. The chains kube-proxy made stay (the next kube-proxy takes them over).
remove_orphan_node() {
  local chain
  remove_shared_node_parts
  while iptables -D FORWARD -j "${NODE_FIREWALL_CHAIN}" 2>/dev/null; do :; done
  while iptables -D OUTPUT -j "${NODE_OUTPUT_CHAIN}" 2>/dev/null; do :; done
  for chain in "${NODE_FIREWALL_CHAIN}" "${NODE_OUTPUT_CHAIN}"; do
    if iptables -F "${chain}" 2>/dev/null; then
      iptables -X "${chain}" 2>/dev/null || warn "could not remove the chain ${chain}"
    fi
  done
  ip link delete "${NODE_BRIDGE}" 2>/dev/null || warn "could not delete the bridge ${NODE_BRIDGE}"
}

# ---------------------------------------------------------------------------------------------
# The pod network: bridge, forwarding, firewall

# firewall_snapshot FILE: the chains of every table, IPv4 and IPv6, one "family table chain" a line.
firewall_snapshot() {
  local family save
  for family in 4 6; do
    save=iptables-save
    [[ "${family}" == 6 ]] && save=ip6tables-save
    "${save}" 2>/dev/null | awk -v f="${family}" '/^\*/ { table = substr($0, 2) } /^:/ { print f, table, substr($1, 2) }'
  done | sort >"$1"
}

make_pod_network() {
  local record
  record="$(node_dir)/${NODE_RECORD}"
  ip link show "${NODE_BRIDGE}" >/dev/null 2>&1 && die "$(node_owner_conflict)"
  firewall_snapshot "${record}/firewall-before"
  cat /proc/sys/net/ipv4/ip_forward >"${record}/ip_forward-before"
  ip link add "${NODE_BRIDGE}" type bridge
  # The record says this control plane owns the node's machine-wide parts (stop_node); the
  # bridge's alias says which control plane made it, for an `up` that finds it later.
  echo "${NODE_BRIDGE}" >"${record}/bridge"
  # shellcheck disable=SC2031 # this control plane's own folder
  ip link set dev "${NODE_BRIDGE}" alias "${BRIDGE_ALIAS_PREFIX}${STATE_DIR}"
  ip addr add "${POD_GATEWAY_IP}/${NODE_POD_CIDR#*/}" dev "${NODE_BRIDGE}"
  ip link set "${NODE_BRIDGE}" up
  # Bridged pod-to-pod frames must pass iptables, or a Service's DNAT is skipped for a pod calling
  # a pod on the same bridge.
  [[ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null)" == 1 ]] ||
    die "net.bridge.bridge-nf-call-iptables is not 1 (is br_netfilter loaded?): Services would not work between pods"
  # A pod calling a Service is routed through the host back onto the bridge. Forwarding is on for
  # that only: the chain below lets through what enters and leaves the bridge, and drops the rest.
  iptables -N "${NODE_FIREWALL_CHAIN}"
  iptables -A "${NODE_FIREWALL_CHAIN}" -i "${NODE_BRIDGE}" -o "${NODE_BRIDGE}" -j ACCEPT
  iptables -A "${NODE_FIREWALL_CHAIN}" -j DROP
  iptables -I FORWARD 1 -j "${NODE_FIREWALL_CHAIN}"
  # kwok's simulated pods have addresses in ${POD_CIDR} that nothing answers: a Service or route
  # pointing at them must fail here, not follow the default route off the machine.
  iptables -N "${NODE_OUTPUT_CHAIN}"
  iptables -A "${NODE_OUTPUT_CHAIN}" -d "${POD_CIDR}" -j REJECT --reject-with icmp-net-unreachable
  iptables -I OUTPUT 1 -j "${NODE_OUTPUT_CHAIN}"
  echo 1 >/proc/sys/net/ipv4/ip_forward
}

remove_pod_network() {
  local record before
  record="$(node_dir)/${NODE_RECORD}"
  while iptables -D FORWARD -j "${NODE_FIREWALL_CHAIN}" 2>/dev/null; do :; done
  while iptables -D OUTPUT -j "${NODE_OUTPUT_CHAIN}" 2>/dev/null; do :; done
  if [[ -f "${record}/bridge" ]]; then
    ip link delete "${NODE_BRIDGE}" 2>/dev/null || true
  fi
  remove_new_chains "${record}/firewall-before"
  if [[ -f "${record}/ip_forward-before" ]]; then
    before="$(cat "${record}/ip_forward-before")"
    echo "${before}" >/proc/sys/net/ipv4/ip_forward
  fi
}

# remove_new_chains BEFORE: every chain of ours or of what we ran (kube-proxy's and the kubelet's
# KUBE-*, the CNI plugins' CNI-*, ours) that BEFORE does not list, with every rule that jumps to
# one. Each table is saved, those lines are left out, and it is restored in one step, so chains
# that refer to each other go together and nothing else in the table changes.
remove_new_chains() {
  local before="$1" now family table save restore
  [[ -f "${before}" ]] || return 0
  now="$(mktemp)"
  firewall_snapshot "${now}"
  while read -r family table; do
    save=iptables-save restore=iptables-restore
    [[ "${family}" == 6 ]] && save=ip6tables-save restore=ip6tables-restore
    # shellcheck disable=SC2046 # the chain names are single words
    "${save}" -t "${table}" | without_chains $(comm -13 "${before}" "${now}" | awk -v f="${family}" -v t="${table}" '$1 == f && $2 == t { print $3 }') |
      "${restore}" -T "${table}" || warn "could not remove the new chains of the ${save%-save} table ${table}"
  done < <(comm -13 "${before}" "${now}" | grep -E ' (KUBE|CNI|SERVEKIT)-' | awk '{ print $1, $2 }' | sort -u)
  rm -f "${now}"
}

# without_chains CHAIN...: iptables-save's text on stdin, less the chains named (only KUBE-*, CNI-*
# and SERVEKIT-* ones are ever named), their rules and every rule that jumps or goes to them.
without_chains() {
  awk -v names="$*" '
    BEGIN { n = split(names, list, " "); for (i = 1; i <= n; i++) if (list[i] ~ /^(KUBE|CNI|SERVEKIT)-/) drop[list[i]] = 1 }
    /^:/ { if (substr($1, 2) in drop) next }
    /^-A / {
      if ($2 in drop) next
      for (i = 3; i < NF; i++) if (($i == "-j" || $i == "-g") && ($(i + 1) in drop)) next
    }
    { print }'
}

# ---------------------------------------------------------------------------------------------
# containerd

write_containerd_config() {
  local dir
  dir="$(node_dir)"
  mkdir -p "${dir}/cni/net.d" "${dir}/cni/ipam"
  cat >"${dir}/containerd/config.toml" <<EOF
version = 2
root = "${dir}/containerd/root"
state = "${dir}/containerd/state"
[grpc]
  address = "$(containerd_address)"
[ttrpc]
  address = "$(containerd_address).ttrpc"
[debug]
  level = "warn"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${SANDBOX_IMAGE}"
  enable_selinux = false
  # This machine's root may not lower a process's oom_score_adj (no CAP_SYS_RESOURCE in a
  # container): keep the kubelet's values at or above containerd's own, as kind does.
  restrict_oom_score_adj = true
  # The kubelet checks the same limit; nothing here is pulled from a registry.
  max_container_log_line_size = 16384
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "${dir}/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${CNI_BIN_DIR}"
    conf_dir = "${dir}/cni/net.d"
    max_conf_num = 1
EOF
}

# The pod network's CNI configuration: the bridge with the host as gateway but no default route
# (isDefaultGateway false; IPAM hands out only the Service range's route), no masquerading,
# host-local addresses kept in the state folder, and portmap for hostPort.
write_cni_config() {
  local dir
  dir="$(node_dir)"
  cat >"${dir}/cni/net.d/10-${CNI_NETWORK}.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "${CNI_NETWORK}",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "${NODE_BRIDGE}",
      "isGateway": true,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "${dir}/cni/ipam",
        "ranges": [[{"subnet": "${NODE_POD_CIDR}", "gateway": "${POD_GATEWAY_IP}"}]],
        "routes": [{"dst": "${SERVICE_CLUSTER_IP_RANGE}", "gw": "${POD_GATEWAY_IP}"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": false}
  ]
}
EOF
}

start_containerd() {
  local dir
  dir="$(node_dir)"
  mkdir -p "${dir}/containerd" "${CONTAINERD_SOCKET_DIR}"
  write_containerd_config
  write_cni_config
  # `up` runs under umask 077 for its keys; containerd would give container root filesystems
  # the same mode, which the images' non-root users cannot read.
  (umask 022 && start_process containerd "$(command -v containerd)" --config "${dir}/containerd/config.toml")
  wait_for containerd 60 "containerd on $(containerd_address)" ctr_k8s version
}

# load_image REF: an image built here (hack/image/build.sh) into the node's containerd, for pods
# to run. hack/image/export.sh writes it to an archive in the image cache (and skips that when the
# archive already holds this very image), which `ctr images import` reads.
load_image() {
  local ref="$1" name archive output
  # The archive names `make image-archives` uses: the image's last path component.
  name="${ref##*/}"
  archive="${SERVEKIT_IMAGE_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/servekit/images}/${name%%:*}.tar"
  if ! output="$(bash "${SERVEKIT_ROOT}/hack/image/export.sh" "${ref}" "${archive}" 2>&1)"; then
    die "could not export ${ref} (is it built? make image, or hack/image/build.sh): ${output}"
  fi
  output="$(ctr_k8s images import "${archive}" 2>&1)" || die "ctr images import of ${ref} failed: ${output}"
  log "loaded ${ref} into the node: ${output//$'\n'/; }"
}

# ---------------------------------------------------------------------------------------------
# kubelet and kube-proxy

write_kubelet_config() {
  # shellcheck disable=SC2031 # this control plane's own folder
  local dir pki="${STATE_DIR}/pki"
  dir="$(node_dir)"
  cat >"${dir}/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: ${POD_GATEWAY_IP}
port: ${KUBELET_PORT}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${KUBELET_HEALTHZ_PORT}
tlsCertFile: ${pki}/kubelet.crt
tlsPrivateKeyFile: ${pki}/kubelet.key
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: ${pki}/ca.crt
authorization:
  mode: Webhook
# cgroup v1 on this machine kind: kept working on purpose (the kubelet refuses it otherwise).
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: ${KUBELET_CGROUP_ROOT}
clusterDomain: cluster.local
clusterDNS:
  - ${POD_GATEWAY_IP}
resolvConf: ${dir}/kubelet/resolv.conf
podLogsDir: ${dir}/pod-logs
containerRuntimeEndpoint: unix://$(containerd_address)
# Images are built and loaded here, never pulled: garbage collection must not remove them, and a
# busy shared disk must not evict the tests' pods.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
failSwapOn: false
protectKernelDefaults: false
makeIPTablesUtilChains: false
serializeImagePulls: false
registerWithTaints:
  - key: ${NODE_LABEL_KEY}
    value: ${NODE_LABEL_VALUE}
    effect: NoSchedule
nodeStatusUpdateFrequency: 10s
maxPods: 50
EOF
  # Pods with dnsPolicy Default get this; there is no resolver outside the cluster to name.
  printf 'nameserver %s\n' "${POD_GATEWAY_IP}" >"${dir}/kubelet/resolv.conf"
}

# The kubelet's cgroup subtree must exist in every cgroup v1 hierarchy before it starts (it
# makes what is below); cpuset's needs its parent's CPUs and memory nodes before any task joins.
make_node_cgroups() {
  local hierarchy
  for hierarchy in /sys/fs/cgroup/*/; do
    [[ "${hierarchy}" == */unified/ ]] && continue
    mkdir -p "${hierarchy}${KUBELET_CGROUP_ROOT#/}"
  done
  if [[ -d /sys/fs/cgroup/cpuset ]]; then
    cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset${KUBELET_CGROUP_ROOT}/cpuset.cpus"
    cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset${KUBELET_CGROUP_ROOT}/cpuset.mems"
  fi
}

start_kubelet() {
  local dir
  dir="$(node_dir)"
  mkdir -p "${dir}/kubelet" "${dir}/pod-logs"
  make_node_cgroups
  write_node_kubeconfig "${dir}/kubelet/kubeconfig" node
  write_kubelet_config
  # The kubelet makes the pods' volume folders, which their non-root users read (see containerd).
  (umask 022 && start_process kubelet "$(binary_path kube kubelet)" \
    --config="${dir}/kubelet/config.yaml" --kubeconfig="${dir}/kubelet/kubeconfig" \
    --root-dir="${KUBELET_ROOT_DIR}" --cert-dir="${dir}/kubelet/pki" \
    --hostname-override="${NODE_NAME}" --node-ip="${POD_GATEWAY_IP}" \
    --node-labels="${NODE_LABEL_KEY}=${NODE_LABEL_VALUE}" --v=1)
  wait_for kubelet 120 "the kubelet to register ${NODE_NAME} and report it Ready" \
    kube wait node "${NODE_NAME}" --for=condition=Ready --timeout=2s
}

write_kube_proxy_config() {
  local dir
  dir="$(node_dir)"
  cat >"${dir}/kube-proxy/config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: ${dir}/kube-proxy/kubeconfig
mode: iptables
hostnameOverride: ${NODE_NAME}
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:${KUBE_PROXY_HEALTHZ_PORT}
metricsBindAddress: 127.0.0.1:${KUBE_PROXY_METRICS_PORT}
clusterCIDR: ${NODE_POD_CIDR}
# Leave the machine's conntrack sysctls alone.
conntrack:
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

start_kube_proxy() {
  local dir
  dir="$(node_dir)"
  mkdir -p "${dir}/kube-proxy"
  write_node_kubeconfig "${dir}/kube-proxy/kubeconfig" kube-proxy
  write_kube_proxy_config
  start_process kube-proxy "$(binary_path kube kube-proxy)" --config="${dir}/kube-proxy/config.yaml" --v=1
  wait_for kube-proxy 60 "kube-proxy to sync Services into iptables" \
    curl -fsS "http://127.0.0.1:${KUBE_PROXY_HEALTHZ_PORT}/healthz"
}

# The API server calls the kubelet (logs, exec, port-forward) as kube-apiserver-kubelet-client;
# the kubelet asks the API server whether that user may (authorization mode Webhook).
grant_apiserver_kubelet_access() {
  kube apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: servekit:kube-apiserver-kubelet-client
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:kubelet-api-admin
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: User
    name: kube-apiserver-kubelet-client
EOF
}

start_node() {
  local dir
  dir="$(node_dir)"
  mkdir -p "${dir}/${NODE_RECORD}"
  make_pod_network
  start_containerd
  load_sandbox_image
  grant_apiserver_kubelet_access
  start_kubelet
  start_kube_proxy
  log "the real node ${NODE_NAME} is Ready: pods ${NODE_POD_CIDR} on ${NODE_BRIDGE}, host ${POD_GATEWAY_IP}"
}

# The pause image every pod sandbox starts from, built here (hack/image/build.sh pause).
load_sandbox_image() {
  load_image "${SANDBOX_IMAGE}"
}

# ---------------------------------------------------------------------------------------------
# Taking the node down

# Pods leave through the kubelet first, so their sandboxes' networks are torn down by the CNI
# plugins as in any cluster; whatever a crash left behind is removed by hand afterwards.
drain_node() {
  local deadline
  kube get node "${NODE_NAME}" >/dev/null 2>&1 || return 0
  kube cordon "${NODE_NAME}" >/dev/null 2>&1 || true
  kube delete pods --all-namespaces --field-selector "spec.nodeName=${NODE_NAME}" \
    --grace-period=2 --wait=false >/dev/null 2>&1 || true
  deadline=$((SECONDS + 45))
  while [[ -n "$(kube get pods --all-namespaces --field-selector "spec.nodeName=${NODE_NAME}" -o name 2>/dev/null)" ]]; do
    if [[ "${SECONDS}" -ge "${deadline}" ]]; then
      warn "pods are still on ${NODE_NAME} after 45 s; removing their containers by hand"
      return 0
    fi
    sleep 1
  done
}

remove_containers() {
  local id
  running_pid containerd >/dev/null || return 0
  for id in $(ctr_k8s tasks list -q 2>/dev/null); do
    ctr_k8s tasks kill --signal SIGKILL "${id}" >/dev/null 2>&1 || true
    ctr_k8s tasks delete --force "${id}" >/dev/null 2>&1 || true
  done
  for id in $(ctr_k8s containers list -q 2>/dev/null); do
    ctr_k8s containers delete "${id}" >/dev/null 2>&1 || true
  done
}

# What containerd could not remove (it had died, or a container would not stop): runc's own
# state for our runtime root names each container; deleting with --force kills its processes
# while their shim still runs to reap them.
remove_runc_containers() {
  local root id
  root="$(node_dir)/containerd/runc/k8s.io"
  [[ -d "${root}" ]] || return 0
  for id in $(runc --root "${root}" list -q 2>/dev/null); do
    runc --root "${root}" delete --force "${id}" >/dev/null 2>&1 || warn "could not delete the container ${id}"
  done
}

# containerd-shim-runc-v2 outlives containerd by design; ours name our containerd's address.
kill_shims() {
  local pid address
  address="$(containerd_address)"
  for pid in $(pgrep -f containerd-shim-runc-v2 2>/dev/null); do
    if tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -qF -- "-address ${address} "; then
      kill -KILL "${pid}" 2>/dev/null || true
    fi
  done
}

# unmount_under DIR: mounts at DIR and under it (volumes, container root filesystems, sandbox
# /dev/shm; the kubelet bind-mounts its root onto itself), deepest first.
unmount_under() {
  local target
  while read -r target; do
    umount -l "${target}" 2>/dev/null || warn "could not unmount ${target}"
  done < <(findmnt -rn -o TARGET | awk -v d="$1" '$0 == d || index($0, d "/") == 1' | sort -r)
}

# Network namespaces whose interfaces hold a pod address of ours.
remove_pod_netns() {
  local path name
  for path in "${NETNS_DIR}"/*; do
    [[ -e "${path}" ]] || continue
    name="$(basename "${path}")"
    if ip netns exec "${name}" ip -4 -o addr show 2>/dev/null | grep -q " ${NODE_POD_CIDR%.*}\."; then
      ip netns delete "${name}" 2>/dev/null || warn "could not delete the network namespace ${name}"
    fi
  done
}

# The kubelet's cgroup subtree, in every hierarchy, deepest first.
remove_node_cgroups() {
  local root="${KUBELET_CGROUP_ROOT}" hierarchy
  for hierarchy in /sys/fs/cgroup/*/; do
    [[ -d "${hierarchy}${root#/}" ]] || continue
    find "${hierarchy}${root#/}" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [[ ! -d "${hierarchy}${root#/}" ]] || warn "could not remove the cgroup ${hierarchy}${root#/}"
  done
}

# The kubelet's links in /var/log/containers point into our pod-logs folder; those of a node whose
# folder is unknown (remove_orphan_node) are the dangling ones into any node's pod-logs folder.
remove_log_links() {
  local link target
  [[ -d "${CONTAINER_LOG_LINKS}" ]] || return 0
  for link in "${CONTAINER_LOG_LINKS}"/*; do
    [[ -L "${link}" ]] || continue
    target="$(readlink "${link}")"
    if [[ "${target}" == "$(node_dir)/pod-logs/"* ]] || [[ ! -e "${link}" && "${target}" == */node/pod-logs/* ]]; then
      rm -f "${link}"
    fi
  done
  return 0
}

stop_node() {
  # Only a control plane that made the bridge ran a node: one whose `up` stopped before that
  # (another node was running) must leave that one alone.
  [[ -f "$(node_dir)/${NODE_RECORD}/bridge" ]] || return 0
  drain_node
  remove_node_leftovers
}

# Everything of this control plane's node but its pods' API objects. The machine's shared parts
# go too unless a later `up` has already reclaimed them for its own node (claim_node_host).
remove_node_leftovers() {
  local owner
  stop_processes kube-proxy kubelet
  remove_containers
  stop_processes containerd
  remove_runc_containers
  unmount_under "$(node_dir)"
  owner="$(bridge_owner)"
  # shellcheck disable=SC2031 # this control plane's own folder
  if [[ -n "${owner}" && "${owner}" != "${STATE_DIR}" ]]; then
    warn "the node of the control plane in ${owner} has the machine's bridge now: leaving it its shared parts"
    return 0
  fi
  remove_shared_node_parts
  remove_pod_network
}

# The node's parts in the machine's shared places, but the bridge and the firewall: its shims,
# the kubelet's root and its mounts, pods' network namespaces, cgroups, log links, sockets.
remove_shared_node_parts() {
  kill_shims
  unmount_under "${KUBELET_ROOT_DIR}"
  remove_pod_netns
  remove_node_cgroups
  remove_log_links
  # libcni's cache of our network's results.
  rm -f /var/lib/cni/results/"${CNI_NETWORK}"-* 2>/dev/null || true
  rm -rf "${CONTAINERD_SOCKET_DIR}" "${KUBELET_ROOT_DIR%/*}"
}
