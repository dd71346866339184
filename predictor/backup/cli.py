"""``python -m predictor.backup``: the steps of hack/backup.sh and hack/restore.sh that are not kubectl calls.

The scripts run kubectl and call one command here per step; each command reads files and prints
what the next kubectl call needs. Exit codes: 0 done, 1 a bad backup, model store or release, 2 a
usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from predictor.backup import archive, export, helm_release, helm_restore, models, objects, restore

EXIT_OK, EXIT_ERROR = 0, 1


class Output:
    """Progress on stdout, warnings on stderr, every line naming the script the user ran."""

    def __init__(self, prog: str) -> None:
        self.prog = prog

    def say(self, message: str) -> None:
        print(f"{self.prog}: {message}", flush=True)

    def warn(self, message: str) -> None:
        print(f"{self.prog}: warning: {message}", file=sys.stderr, flush=True)


def _store(text: str) -> models.ModelStore:
    try:
        return models.ModelStore.parse(text)
    except models.ModelError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m predictor.backup", description=__doc__)
    parser.add_argument("--prog", default="backup", help="name to put in front of every message")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    made = commands.add_parser("export", help="write a backup from kubectl's answers")
    made.add_argument("--raw", type=Path, required=True, help="folder of kubectl's answers (see export.RAW_FILES)")
    made.add_argument("--out", type=Path, required=True, help="backup folder to write (absent or empty)")
    made.add_argument("--namespace", required=True)
    made.add_argument("--context", default="")
    made.add_argument("--server", default="")
    made.add_argument("--model-store", type=_store, action="append", default=[], metavar="URI_PREFIX=DIR")
    made.add_argument("--dry-run", action="store_true", help="list what would be written")

    def on_backup(name: str, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text)
        sub.add_argument("backup", type=Path, metavar="BACKUP", help="backup folder")
        return sub

    on_backup("verify", "check every file of a backup (and the Helm SDK, if it has releases) and summarise it")
    shown = on_backup("show", "print one fact of the backup")
    shown.add_argument("field", choices=["id", "namespace"], help="its id, or the namespace it was taken from")
    on_backup("required-apis", "print 'GROUP/VERSION PLURAL' for each API the target must serve")
    checked = on_backup("check-models", "fail when a store now holds another model than the backup recorded")
    checked.add_argument("--model-store", type=_store, action="append", required=True, metavar="URI_PREFIX=DIR")
    for name, text in (("namespace", "print the target Namespace as JSON"), ("objects", "write the objects")):
        sub = on_backup(name, text)
        sub.add_argument("--namespace", required=True)
        if name == "objects":
            sub.add_argument("--out", type=Path, required=True, help="folder for one JSON file per object")
    releases = on_backup("helm", "install the backed-up Helm releases again")
    releases.add_argument("--namespace", required=True)
    releases.add_argument("--context", default="")
    releases.add_argument("--dry-run", action="store_true")

    patch = commands.add_parser("patch", help="print the JSON patch from the live object (stdin) to FILE")
    patch.add_argument("wanted", type=Path, metavar="FILE", help="an object as `objects` wrote it")
    return parser


def cmd_export(args: argparse.Namespace, out: Output) -> int:
    source = export.Source(args.namespace, args.context, args.server)
    files = export.build(args.raw, source, args.model_store, datetime.now(UTC), out.say, out.warn)
    if args.dry_run:
        out.say(f"dry run: the backup would hold {len(files)} files")
        return EXIT_OK
    archive.write(args.out, files)
    return EXIT_OK


def cmd_verify(backup: archive.Backup, out: Output) -> int:
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
    return EXIT_OK


def cmd_objects(backup: archive.Backup, namespace: str, folder: Path) -> int:
    """One JSON file per object, and a line `FILE RESOURCE NAME` for each, in restore order."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, obj in enumerate(restore.objects_in_order(backup, namespace)):
        kind, name = objects.kind_of(obj), objects.name_of(obj)
        path = folder / f"{index:03d}-{kind.folder}-{name}.json"
        path.write_text(json.dumps(obj, indent=1))
        print(f"{path} {kind.resource} {name}")
    return EXIT_OK


def cmd_patch(wanted_path: Path) -> int:
    wanted = json.loads(wanted_path.read_text(encoding="utf-8"))
    print(json.dumps(objects.patch_ops(wanted, json.load(sys.stdin))))
    return EXIT_OK


def dispatch(args: argparse.Namespace, out: Output) -> int:
    if args.command == "export":
        return cmd_export(args, out)
    if args.command == "patch":
        return cmd_patch(args.wanted)
    backup = archive.load(args.backup)
    if args.command == "verify":
        return cmd_verify(backup, out)
    if args.command == "show":
        print(backup.id if args.field == "id" else backup.source.get("namespace", ""))
    elif args.command == "required-apis":
        for group_version, plural in restore.required_apis(backup):
            print(f"{group_version} {plural}")
    elif args.command == "check-models":
        checked, problems = models.compare(backup.models, args.model_store)
        if problems:
            listed = "\n  ".join(problems)
            raise models.ModelError(f"the model store holds other models than the backup recorded:\n  {listed}")
        out.say(f"models: {checked} of {len(backup.models)} in the model store, each with the backed-up sha256")
    elif args.command == "namespace":
        print(json.dumps(restore.namespace_manifest(backup, args.namespace)))
    elif args.command == "objects":
        return cmd_objects(backup, args.namespace, args.out)
    elif args.command == "helm":
        helm_restore.restore_releases(backup, args.namespace, args.context, args.dry_run, out.say)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Output(args.prog)
    try:
        return dispatch(args, out)
    except (
        archive.ArchiveError,
        models.ModelError,
        objects.ObjectError,
        helm_restore.HelmRestoreError,
        helm_release.ReleaseError,
    ) as exc:
        print(f"{args.prog}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
