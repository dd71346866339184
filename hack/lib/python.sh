#!/usr/bin/env bash
# Python: the interpreter that has the servekit package, for the steps done in Python (backups,
# manifests).
#
# Usage: sourced by hack/lib.sh (with the rest of the library); not run on its own.

# find_servekit_python MODULE: SERVEKIT_PY, a Python that has the servekit package:
# $SERVEKIT_PYTHON, else the repository's .venv, else python3. It must import MODULE
# (predictor.backup for the backup tool; hack/deploy.sh needs only yaml, one of servekit's
# dependencies).
find_servekit_python() {
  local module="$1" candidates=("${SERVEKIT_ROOT}/.venv/bin/python" python3) candidate
  if [[ -n "${SERVEKIT_PYTHON:-}" ]]; then
    candidates=("${SERVEKIT_PYTHON}")
  fi
  for candidate in "${candidates[@]}"; do
    if "${candidate}" -c "import ${module}" >/dev/null 2>&1; then
      SERVEKIT_PY="${candidate}"
      return 0
    fi
  done
  die "no Python with the servekit package (tried: ${candidates[*]}): run 'make .venv/.dev-installed' or 'pip install servekit[backup]', or set SERVEKIT_PYTHON"
}

# backup_py COMMAND ARGS...: the backup tool (predictor/backup/cli.py), its messages under this
# script's name.
backup_py() {
  "${SERVEKIT_PY}" -m predictor.backup --prog "${SCRIPT_NAME}" "$@"
}
