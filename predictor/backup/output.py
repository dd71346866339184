"""What the backup tool prints: progress on stdout and warnings on stderr, each line naming the
script the user ran, and the summary of a backup that `verify` and `restore` show."""

from __future__ import annotations

import sys

from predictor.backup import archive, helm_release, helm_restore, models, objects

# What the tool reports as "error: ..." with exit status 1: a bad backup, model store, object or
# Helm release. Anything else is a bug and keeps its traceback.
REPORTED_ERRORS: tuple[type[Exception], ...] = (
    archive.ArchiveError,
    models.ModelError,
    objects.ObjectError,
    helm_restore.HelmRestoreError,
    helm_release.ReleaseError,
)


class Output:
    """Progress on stdout, warnings on stderr, every line naming the script the user ran."""

    def __init__(self, prog: str) -> None:
        self.prog = prog

    def say(self, message: str) -> None:
        print(f"{self.prog}: {message}", flush=True)

    def warn(self, message: str) -> None:
        print(f"{self.prog}: warning: {message}", file=sys.stderr, flush=True)


def summarise(backup: archive.Backup, out: Output) -> None:
    """Check that Helm's SDK is there when the backup has releases, and say what the backup holds."""
    if backup.releases:
        helm_restore.require_sdk()
    source = backup.source
    out.say(
        f"backup {backup.id} of namespace {source.get('namespace')} on {source.get('server') or '?'} "
        f"(context {source.get('context') or '?'}), taken {backup.index.get('created')}"
    )
    counts: dict[str, int] = {}
    for obj in backup.objects:
        counts[obj["kind"]] = counts.get(obj["kind"], 0) + 1
    listed = [f"{count} {kind}" for kind, count in counts.items()]
    listed += [f"Helm release {entry['name']}" for entry in backup.releases]
    listed += [f"{len(backup.models)} model URIs"]
    out.say("holds " + ", ".join(listed))
