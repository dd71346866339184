#!/usr/bin/env bash
# Roll out a new model version of an InferenceService as a canary and see it through to its
# verdict: `servekit-canary release` (predictor/canary/commands/release.py) with this script's
# name on its messages. .github/workflows/model-release.yml runs it; it works the same from a
# laptop. Every flag, and what each mode does: hack/model-release.sh --help.
#
# Usage: hack/model-release.sh --isvc NAME --name CANARY (--storage-uri URI | --image REF) [options]
#
# Exit status: 0 promoted, 1 rolled back, 2 bad usage, a tool or API error, or no verdict within
# --timeout. Needs a Python with the servekit package ($SERVEKIT_PYTHON, else the repository's
# .venv, else python3), servekit-canary and, for --mode controller or --prometheus-service,
# kubectl; both use the current kubeconfig context.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# No Python with the canary tool is a missing tool: exit status 2, as 1 means "rolled back".
(find_servekit_python predictor.canary.commands.release) || exit 2
find_servekit_python predictor.canary.commands.release
exec "${SERVEKIT_PY}" -m predictor.canary.commands.release --prog "${SCRIPT_NAME}" "$@"
