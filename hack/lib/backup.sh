#!/usr/bin/env bash
# Backups (hack/backup.sh; hack/restore.sh is Python, predictor/backup/restore_command.py): the
# names and values its command line takes, and a scratch folder.
#
# Usage: sourced by hack/lib.sh (with the rest of the library); not run on its own.

# The ConfigMaps servekit-canary keeps each InferenceService's history in (docs/canary.md).
# shellcheck disable=SC2034 # used by the scripts that source this file
HISTORY_SELECTOR="app.kubernetes.io/managed-by=servekit-canary,servekit.dev/inferenceservice"

# check_dns_label FLAG VALUE: a usage error unless VALUE can name a namespace.
check_dns_label() {
  if [[ ! "$2" =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]]; then
    usage_error "$1 '$2' is not a namespace name (lower-case letters, digits and '-', at most 63)"
  fi
}

# check_model_store VALUE: a usage error unless VALUE is URI_PREFIX=DIR with DIR a folder, or
# s3://BUCKET[/PREFIX] (read over the S3 API).
check_model_store() {
  [[ "$1" =~ ^s3://[^=/]+(/[^=]*)?$ ]] && return 0
  [[ "$1" =~ ^[a-z0-9+.-]+://[^=]*=.+$ ]] ||
    usage_error "--model-store '$1' is not URI_PREFIX=DIR (e.g. s3://models=/mnt/models) or s3://BUCKET[/PREFIX] (e.g. s3://models)"
  [[ -d "${1#*=}" ]] || usage_error "--model-store '$1': ${1#*=} is not a directory"
}

# is_archive PATH: true for a .tar.gz or .tgz name (anything else is a folder).
is_archive() {
  [[ "$1" == *.tar.gz || "$1" == *.tgz ]]
}

# start_workdir: a private scratch folder in WORKDIR, removed when the script exits.
start_workdir() {
  WORKDIR="$(mktemp -d)"
  trap 'rm -rf "${WORKDIR}"' EXIT
}
