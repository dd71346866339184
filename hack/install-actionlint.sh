#!/usr/bin/env bash
# Build actionlint, the GitHub Actions workflow linter, from its Go module at the pinned version,
# once, into a per-user cache outside the repository:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/servekit/tools/actionlint-<version>/actionlint
# Idempotent: a build that is there and reports the pinned version is kept. tests/workflows runs
# it over .github/workflows/ (with shellcheck on every `run:` step).
#
# Usage: hack/install-actionlint.sh [--print-path] [--optional] [--reinstall]
#
#   --print-path  print where the binary is (or will be) and exit; builds nothing
#   --optional    without Go, say so in one line and exit 0 (`make test-tools`: the test skips)
#   --reinstall   build again even when the binary is there
#   -h, --help    show this help
#
# Needs Go >= 1.25 (actionlint's go.mod) and the Go module proxy; the first build takes about a minute.
set -euo pipefail

# Pinned version: the Go module github.com/rhysd/actionlint at this tag.
readonly ACTIONLINT_VERSION="v1.7.12"
readonly ACTIONLINT_PACKAGE="github.com/rhysd/actionlint/cmd/actionlint"

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

print_path=false
optional=false
reinstall=false

while [[ $# -gt 0 ]]; do
  case "$1" in
    --print-path) print_path=true; shift ;;
    --optional) optional=true; shift ;;
    --reinstall) reinstall=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option: $1" ;;
  esac
done

tool_dir="${XDG_CACHE_HOME:-${HOME}/.cache}/servekit/tools/actionlint-${ACTIONLINT_VERSION}"
binary="${tool_dir}/actionlint"

if [[ "${print_path}" == true ]]; then
  echo "${binary}"
  exit 0
fi

# A binary from an interrupted or older build is not trusted: it must say it is the pinned version.
built_at_pin() {
  [[ -x "${binary}" ]] && [[ "$("${binary}" -version 2>/dev/null | head -n 1)" == "${ACTIONLINT_VERSION}" ]]
}

if [[ "${reinstall}" == false ]] && built_at_pin; then
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  if [[ "${optional}" == true ]]; then
    log "Go is not installed: actionlint is not built and the workflow lint test will skip (install Go >= 1.25 to run it)"
    exit 0
  fi
  die "go is required to build actionlint ${ACTIONLINT_VERSION}: install Go >= 1.25 (https://go.dev/doc/install)"
fi

# Build into a fresh directory beside the target, then move it in: an interrupted build never
# leaves a half-written binary where the tests look.
mkdir -p "$(dirname "${tool_dir}")"
staging="$(mktemp -d "${tool_dir}.build.XXXXXX")"
trap 'rm -rf "${staging}"' EXIT
log "building actionlint ${ACTIONLINT_VERSION} from its Go module ($(go env GOVERSION)); about a minute the first time"
GOBIN="${staging}" GOFLAGS="${GOFLAGS:-} -trimpath" go install "${ACTIONLINT_PACKAGE}@${ACTIONLINT_VERSION}"
rm -rf "${tool_dir}"
mv "${staging}" "${tool_dir}"
trap - EXIT
built_at_pin || die "${binary} does not report version ${ACTIONLINT_VERSION}: $("${binary}" -version 2>&1 | head -n 1)"
log "actionlint ${ACTIONLINT_VERSION}: ${binary}"
