#!/usr/bin/env bash
# Back up what servekit keeps in one namespace into a folder (or one .tar.gz) of plain YAML:
# the InferenceServices (spec, not status), the CanaryAnalyses and canary history ConfigMaps,
# the ServiceAccounts InferenceServices outside Helm run as, every Helm release (chart, version
# and the values of the deployed revision, decoded from Helm's release Secret: no helm needed),
# and each model's storage URI with the sha256 its model.yaml names. hack/restore.sh puts it
# back; docs/backup.md says what is and is not in it.
#
# Usage: hack/backup.sh -n NAMESPACE [-o PATH] [--model-store STORE]... [options]
#
#   -n, --namespace NS        the namespace to back up
#   -o, --output PATH         where to write: a new folder, or PATH.tar.gz (or .tgz) for one file
#                             (default: servekit-backup-NS-YYYYMMDDTHHMMSSZ.tar.gz)
#   --model-store URI_PREFIX=DIR
#                             read the model.yaml of models under URI_PREFIX (s3://bucket,
#                             gs://bucket/models, pvc://claim, ...) from DIR, a local mount or
#                             copy of that storage; repeatable. Models no store covers are
#                             recorded without a sha256.
#   --model-store s3://BUCKET[/PREFIX]
#                             read them from the bucket over the S3 API (boto3), with the
#                             endpoint and credentials the AWS tools read: AWS_ENDPOINT_URL,
#                             AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile
#   --context CTX             kubectl context (default: the current one)
#   --dry-run                 read the cluster and list what would be backed up; write nothing
#   -h, --help                show this help
#
# Needs kubectl, tar, and a Python with the servekit package ($SERVEKIT_PYTHON, else the
# repository's .venv, else python3). The backup holds the Helm values as given, secrets in them
# included: keep it as private as the cluster's Secrets (files are written with mode 0600).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

namespace=""
output=""
context=""
dry_run=false
model_stores=()

while [[ $# -gt 0 ]]; do
  case "$1" in
    -n | --namespace) need_value "$@"; namespace="$2"; shift 2 ;;
    -o | --output) need_value "$@"; output="$2"; shift 2 ;;
    --model-store) need_value "$@"; model_stores+=("$2"); shift 2 ;;
    --context) need_value "$@"; context="$2"; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option: $1" ;;
  esac
done

[[ -n "${namespace}" ]] || usage_error "--namespace is required"
check_dns_label --namespace "${namespace}"
for store in "${model_stores[@]}"; do
  check_model_store "${store}"
done
if [[ -z "${output}" ]]; then
  output="servekit-backup-${namespace}-$(date -u +%Y%m%dT%H%M%SZ).tar.gz"
fi
if [[ -e "${output}" ]] && ! [[ -d "${output}" && -z "$(ls -A "${output}")" ]]; then
  usage_error "--output ${output} already exists: pick a new path (a backup never overwrites one)"
fi

require_tools kubectl tar
find_servekit_python predictor.backup
use_kube_context "${context}"
require_cluster
umask 077
start_workdir

# save NAME RESOURCE [kubectl get flags...]: kubectl's answer in raw/NAME.json. A resource the
# cluster does not know (its CRD is not installed) leaves no file; any other failure stops here.
save() {
  local name="$1" resource="$2" answer="${WORKDIR}/raw/$1.json"
  shift 2
  if ! kube -n "${namespace}" get "${resource}" "$@" -o json >"${answer}" 2>"${WORKDIR}/stderr"; then
    rm -f "${answer}"
    if grep -q "the server doesn't have a resource type" "${WORKDIR}/stderr"; then
      return 0
    fi
    die "reading ${resource} in namespace ${namespace} failed: $(tail -n 3 "${WORKDIR}/stderr")"
  fi
}

mkdir -p "${WORKDIR}/raw"
if ! kube get namespace "${namespace}" -o json >"${WORKDIR}/raw/namespace.json" 2>"${WORKDIR}/stderr"; then
  die "namespace ${namespace} cannot be read: $(tail -n 1 "${WORKDIR}/stderr")"
fi
log "reading namespace ${namespace}"
save inferenceservices inferenceservices.serving.kserve.io
save canaryanalyses canaryanalyses.servekit.dev
save configmaps configmaps -l "${HISTORY_SELECTOR}"
save serviceaccounts serviceaccounts
save secrets secrets -l owner=helm --field-selector type=helm.sh/release.v1
kube version -o json >"${WORKDIR}/raw/version.json" 2>/dev/null || rm -f "${WORKDIR}/raw/version.json"

current_context="${context:-$(kube config current-context 2>/dev/null || true)}"
server="$(kube config view --minify -o jsonpath='{.clusters[0].cluster.server}' 2>/dev/null || true)"
folder="${output}"
if is_archive "${output}"; then
  folder="$(basename "${output}")"
  folder="${WORKDIR}/${folder%.t*gz}"
fi
export_args=(--raw "${WORKDIR}/raw" --out "${folder}" --namespace "${namespace}"
  --context "${current_context}" --server "${server}")
for store in "${model_stores[@]}"; do
  export_args+=(--model-store "${store}")
done
if [[ "${dry_run}" == true ]]; then
  export_args+=(--dry-run)
fi
backup_py export "${export_args[@]}"
if [[ "${dry_run}" == true ]]; then
  log "dry run: nothing written"
  exit 0
fi
if is_archive "${output}"; then
  tar -czf "${output}" -C "${WORKDIR}" "$(basename "${folder}")"
fi
log "backup of namespace ${namespace} written to ${output}"
