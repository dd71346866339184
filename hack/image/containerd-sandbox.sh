#!/usr/bin/env bash
# A throwaway containerd for checking images: its own state and socket in a fresh folder under
# /tmp, no CRI plugin, and no network set up for its containers (each gets an empty network
# namespace of its own). It never touches /run/containerd/containerd.sock or the harness node's
# containerd. stop_throwaway_containerd removes its tasks, mounts and state folder.
#
# Its root (content store and unpacked snapshots) is kept in $SANDBOX_ROOT between runs, so a
# warm check does not unpack an image it unpacked before (an 800 MB image takes a minute on a
# busy machine); --fresh in verify.sh starts from an empty one. A lock keeps two checks apart.
#
# Usage: source hack/image/containerd-sandbox.sh   (from hack/image/verify.sh; not run on its own)

SANDBOX_ROOT="${SERVEKIT_CONTAINERD_CHECK_ROOT:-/tmp/servekit-image-check/root}"
SANDBOX_DIR=""
SANDBOX_PID=""
SANDBOX_NAMESPACE="k8s.io"

# sandbox_ctr ARGS...: ctr against the throwaway containerd, in the namespace the kubelet uses.
sandbox_ctr() {
  ctr --address "${SANDBOX_DIR}/containerd.sock" --namespace "${SANDBOX_NAMESPACE}" "$@"
}

start_throwaway_containerd() {
  require_tools containerd ctr runc
  mkdir -p "${SANDBOX_ROOT}"
  # Held until this shell exits: one containerd per root.
  exec {SANDBOX_LOCK}>"${SANDBOX_ROOT}.lock"
  flock --timeout 600 "${SANDBOX_LOCK}" || die "another image check holds ${SANDBOX_ROOT}.lock"
  if [[ "${SANDBOX_FRESH:-false}" == true ]]; then
    rm -rf "${SANDBOX_ROOT}"
    mkdir -p "${SANDBOX_ROOT}"
  fi
  SANDBOX_DIR="$(mktemp -d /tmp/servekit-containerd.XXXXXX)"
  cat >"${SANDBOX_DIR}/config.toml" <<CONFIG
version = 2
root = "${SANDBOX_ROOT}"
state = "${SANDBOX_DIR}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "${SANDBOX_DIR}/containerd.sock"
[ttrpc]
  address = "${SANDBOX_DIR}/containerd.ttrpc.sock"
[debug]
  address = ""
[metrics]
  address = ""
CONFIG
  containerd --config "${SANDBOX_DIR}/config.toml" >"${SANDBOX_DIR}/containerd.log" 2>&1 &
  SANDBOX_PID=$!
  local deadline=$((SECONDS + 30))
  until sandbox_ctr version >/dev/null 2>&1; do
    if ! kill -0 "${SANDBOX_PID}" 2>/dev/null || [[ "${SECONDS}" -ge "${deadline}" ]]; then
      tail -n 20 "${SANDBOX_DIR}/containerd.log" >&2 || true
      die "the throwaway containerd did not answer on ${SANDBOX_DIR}/containerd.sock"
    fi
    sleep 0.2
  done
}

# stop_throwaway_containerd: kill its tasks (so no shim outlives it), stop it, unmount and remove
# its folder. Never fails.
stop_throwaway_containerd() {
  [[ -n "${SANDBOX_DIR}" ]] || return 0
  local task mount
  if [[ -n "${SANDBOX_PID}" ]] && kill -0 "${SANDBOX_PID}" 2>/dev/null; then
    for task in $(sandbox_ctr tasks ls -q 2>/dev/null); do
      sandbox_ctr tasks kill --signal SIGKILL "${task}" >/dev/null 2>&1 || true
      wait_for_task_stopped "${task}" 10 || true
      sandbox_ctr tasks delete "${task}" >/dev/null 2>&1 || true
    done
    for task in $(sandbox_ctr containers ls -q 2>/dev/null); do
      sandbox_ctr containers delete "${task}" >/dev/null 2>&1 || true
    done
    kill "${SANDBOX_PID}" 2>/dev/null || true
    wait "${SANDBOX_PID}" 2>/dev/null || true
  fi
  # Deepest first: containers' root filesystems are overlay mounts under the state folder.
  while read -r mount; do
    umount -l "${mount}" 2>/dev/null || true
  done < <(awk -v dir="${SANDBOX_DIR}" -v root="${SANDBOX_ROOT}" \
    'index($2, dir) == 1 || index($2, root) == 1 { print $2 }' /proc/mounts | sort -r)
  rm -rf "${SANDBOX_DIR}"
  SANDBOX_DIR=""
}

# task_status ID: RUNNING, STOPPED, ... (empty when there is no such task).
task_status() {
  sandbox_ctr tasks ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'
}

# wait_for_task_stopped ID SECONDS
wait_for_task_stopped() {
  local deadline=$((SECONDS + $2)) status
  while status="$(task_status "$1")" && [[ -n "${status}" && "${status}" != STOPPED ]]; do
    [[ "${SECONDS}" -lt "${deadline}" ]] || return 1
    sleep 0.2
  done
}

# imported_name REF: the name containerd lists for REF (the one that ends in REF without its
# domain); empty when there is none.
imported_name() {
  local path="/${1#localhost/}"
  sandbox_ctr images ls -q | awk -v path="${path}" \
    'length($0) > length(path) && substr($0, length($0) - length(path) + 1) == path { print; exit }'
}

# import_archive FILE REF: import FILE, then print the name containerd gave REF. Skipped when
# this very archive (by the image ID export.sh wrote beside it) is in the kept root already.
import_archive() {
  local archive="$1" ref="$2" name stamp
  stamp="${SANDBOX_ROOT}/servekit-imported.$(basename "${archive}")"
  name="$(imported_name "${ref}")"
  if [[ -z "${name}" || ! -s "${archive}.id" || "$(cat "${stamp}" 2>/dev/null)" != "$(cat "${archive}.id")" ]]; then
    sandbox_ctr images import "${archive}" >/dev/null
    [[ ! -s "${archive}.id" ]] || cp "${archive}.id" "${stamp}"
    name="$(imported_name "${ref}")"
  fi
  echo "${name}"
}
