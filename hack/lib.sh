#!/usr/bin/env bash
# Shell functions shared by the hack/ scripts, one concern a file under hack/lib/:
#   messages.sh  log/warn/die, --help from the header comment, usage errors (exit 2)
#   tools.sh     required tools and their versions, a Docker engine that answers
#   kube.sh      kubectl and helm bound to one context, namespaces, port-forwards
#   waits.sh     retries, polling, Deployments rolled out
#   isvc.sh      an InferenceService's predictor Deployments and conditions, diagnostics
#   backup.sh    what hack/backup.sh and hack/restore.sh check on their command lines
#   python.sh    the Python with the servekit package, for steps done in Python
#
# Usage: source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   (from a hack/ script; not run on its own)
#
# A script that sources this file keeps its usage in its header comment (what `--help` prints),
# and parses its flags before it checks for tools, so `--help` works on a machine without docker
# or kind. No script defines a function of the same name as one here: where a script needs
# another behaviour, the library offers a setting (LOG_FD in messages.sh).
set -euo pipefail

if [[ -z "${BASH_VERSINFO:-}" || "${BASH_VERSINFO[0]}" -lt 4 ||
  ("${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -lt 4) ]]; then
  echo "error: bash >= 4.4 is required, this is ${BASH_VERSION:-not bash} (macOS: install a current bash, then run 'bash hack/...')" >&2
  exit 1
fi

# shellcheck disable=SC2034 # used by the scripts that source this file
SERVEKIT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
SCRIPT_NAME="${SCRIPT_NAME:-$(basename "$0")}"

# shellcheck source-path=SCRIPTDIR source=lib/messages.sh
source "${SERVEKIT_ROOT}/hack/lib/messages.sh"
# shellcheck source-path=SCRIPTDIR source=lib/tools.sh
source "${SERVEKIT_ROOT}/hack/lib/tools.sh"
# shellcheck source-path=SCRIPTDIR source=lib/kube.sh
source "${SERVEKIT_ROOT}/hack/lib/kube.sh"
# shellcheck source-path=SCRIPTDIR source=lib/waits.sh
source "${SERVEKIT_ROOT}/hack/lib/waits.sh"
# shellcheck source-path=SCRIPTDIR source=lib/isvc.sh
source "${SERVEKIT_ROOT}/hack/lib/isvc.sh"
# shellcheck source-path=SCRIPTDIR source=lib/backup.sh
source "${SERVEKIT_ROOT}/hack/lib/backup.sh"
# shellcheck source-path=SCRIPTDIR source=lib/python.sh
source "${SERVEKIT_ROOT}/hack/lib/python.sh"

# ---------------------------------------------------------------------------------------------
# Run on its own, this file only explains itself.

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    "") usage_error "this file is a library: source it from a hack/ script" ;;
    *) usage_error "unknown option: $1" ;;
  esac
fi
