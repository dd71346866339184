#!/usr/bin/env bash
# Messages and the command line: progress to stdout (or LOG_FD), problems to stderr, every line
# naming the script; --help from the script's header comment; usage errors exit 2.
#
# Usage: sourced by hack/lib.sh (with the rest of the library); not run on its own.

# The file descriptor log() writes progress to: stdout. A script whose stdout is for its caller
# to read (hack/controlplane.sh prints lines for `eval`) sets LOG_FD=2 after sourcing lib.sh.
LOG_FD=1

log() {
  printf '%s: %s\n' "${SCRIPT_NAME}" "$*" >&"${LOG_FD}"
}

warn() {
  printf '%s: warning: %s\n' "${SCRIPT_NAME}" "$*" >&2
}

die() {
  printf '%s: error: %s\n' "${SCRIPT_NAME}" "$*" >&2
  exit 1
}

# --help: the comment block at the top of the script, without the shebang and the leading '# '.
usage() {
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
}

# A bad command line: the problem, the usage line, exit status 2.
usage_error() {
  printf '%s: error: %s\n' "${SCRIPT_NAME}" "$*" >&2
  usage | grep '^Usage:' >&2 || true
  printf "Run '%s --help' for the options.\n" "$0" >&2
  exit 2
}

# need_value FLAG "$@": the flag's value, or a usage error when there is none.
need_value() {
  local flag="$1"
  shift
  if [[ $# -lt 1 || -z "$1" || "$1" == --* ]]; then
    usage_error "${flag} needs a value"
  fi
}
