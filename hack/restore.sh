#!/usr/bin/env bash
# Restore a backup made by hack/backup.sh into a namespace of this or another cluster:
# `python -m predictor.backup restore` (predictor/backup/restore_command.py) with this script's
# name on its messages. docs/backup.md has the details; every flag: hack/restore.sh --help.
#
# Usage: hack/restore.sh BACKUP [-n NAMESPACE] [options]
#
# Exit status: 0 restored, 1 a bad backup or a cluster that cannot take it, 2 bad usage. Needs a
# Python with servekit ($SERVEKIT_PYTHON, else the repository's .venv, else python3).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

find_servekit_python predictor.backup
exec "${SERVEKIT_PY}" -m predictor.backup --prog "${SCRIPT_NAME}" restore "$@"
