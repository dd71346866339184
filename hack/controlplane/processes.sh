#!/usr/bin/env bash
# The control plane's processes and ports, for hack/controlplane.sh: start one in the background
# with its log and pid file under the state folder, tell whether it runs, stop it.
#
# Usage: source "$(dirname "${BASH_SOURCE[0]}")/controlplane/processes.sh"   (not run on its own)
#
# A pid file holds "PID BINARY": stop and status only ever act on a process whose executable is
# still that binary, so a pid reused by the system after a crash is never signalled.
set -euo pipefail

# Set by hack/controlplane.sh before any of these run.
STATE_DIR="${STATE_DIR:-}"

# Commands that BINARY is started through (e.g. unshare), which must exec it in the end.
START_WRAPPER=()

# The state folder, readable by this user only (it holds the keys and the admin kubeconfig).
make_state_dir() {
  mkdir -p "${STATE_DIR}"
  chmod 700 "${STATE_DIR}"
}

# start_process NAME BINARY ARG...: BINARY in its own session (it outlives this script), output
# to logs/NAME.log.
start_process() {
  local name="$1" binary="$2" pid
  shift 2
  mkdir -p "${STATE_DIR}/logs" "${STATE_DIR}/pids"
  setsid "${START_WRAPPER[@]}" "${binary}" "$@" >"${STATE_DIR}/logs/${name}.log" 2>&1 </dev/null &
  pid=$!
  echo "${pid} ${binary}" >"${STATE_DIR}/pids/${name}.pid"
  log "started ${name} (pid ${pid}; log ${STATE_DIR}/logs/${name}.log)"
}

# The pid of NAME when it runs the binary it was started with; fails otherwise.
running_pid() {
  local file="${STATE_DIR}/pids/$1.pid" pid binary exe
  [[ -f "${file}" ]] || return 1
  read -r pid binary <"${file}"
  [[ -n "${pid}" ]] || return 1
  exe="$(readlink "/proc/${pid}/exe" 2>/dev/null)" || return 1
  # A binary rebuilt or removed from the cache while it runs reads as "PATH (deleted)".
  [[ "${exe% (deleted)}" == "${binary}" ]] || return 1
  echo "${pid}"
}

# stop_processes NAME...: TERM to all at once, then KILL what still runs after 15 s; forgets them
# either way.
stop_processes() {
  local name pid deadline
  local -A pids=()
  for name in "$@"; do
    if pid="$(running_pid "${name}")"; then
      pids[${name}]="${pid}"
      kill -TERM "${pid}" 2>/dev/null || true
    fi
  done
  deadline=$((SECONDS + 15))
  for name in "${!pids[@]}"; do
    pid="${pids[${name}]}"
    while kill -0 "${pid}" 2>/dev/null && [[ "${SECONDS}" -lt "${deadline}" ]]; do
      sleep 0.2
    done
    if kill -0 "${pid}" 2>/dev/null; then
      warn "${name} (pid ${pid}) did not stop in 15s; killing it"
      kill -KILL "${pid}" 2>/dev/null || true
    fi
    log "stopped ${name} (pid ${pid})"
  done
  for name in "$@"; do
    rm -f "${STATE_DIR}/pids/${name}.pid"
  done
}

# True while the process started as NAME lives (a wrapper not yet exec'd into it included).
process_alive() {
  local pid _
  read -r pid _ <"${STATE_DIR}/pids/$1.pid" 2>/dev/null && [[ -n "${pid}" ]] && kill -0 "${pid}" 2>/dev/null
}

# A process that exits while we wait for it: its log's last lines, then exit.
die_if_exited() {
  local name="$1"
  if ! process_alive "${name}"; then
    tail -n 25 "${STATE_DIR}/logs/${name}.log" >&2 2>/dev/null || true
    die "${name} exited; its log: ${STATE_DIR}/logs/${name}.log"
  fi
}

# wait_for NAME TIMEOUT WHAT COMMAND...: poll COMMAND until it succeeds; fail early if the
# process NAME exits, and show its log when time runs out.
wait_for() {
  local name="$1" timeout="$2" what="$3" deadline
  shift 3
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    die_if_exited "${name}"
    if [[ "${SECONDS}" -ge "${deadline}" ]]; then
      tail -n 25 "${STATE_DIR}/logs/${name}.log" >&2 2>/dev/null || true
      die "timed out after ${timeout}s waiting for ${what}; the log of ${name}: ${STATE_DIR}/logs/${name}.log"
    fi
    sleep 0.5
  done
}

# free_ports N: N distinct ports the kernel has just handed out on 127.0.0.1, one a line.
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in sockets))
EOF
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
