"""``python -m predictor.backup``: ``export`` writes a backup from the kubectl answers hack/backup.sh
collected, ``verify`` checks one, and ``restore`` is the whole of hack/restore.sh
(predictor/backup/restore_command.py).

Exit codes: 0 done, 1 a bad backup, model store, release or cluster, 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from predictor.backup import archive, export, models, restore_command
from predictor.backup.output import REPORTED_ERRORS, Output, summarise

EXIT_OK, EXIT_ERROR = 0, 1


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
    made.add_argument(
        "--model-store", type=_store, action="append", default=[], metavar="URI_PREFIX=DIR|s3://BUCKET[/PREFIX]"
    )
    made.add_argument("--dry-run", action="store_true", help="list what would be written")

    verify = commands.add_parser(
        "verify", help="check every file of a backup (and the Helm SDK, if it has releases) and summarise it"
    )
    verify.add_argument("backup", type=Path, metavar="BACKUP", help="backup folder")
    # Parsed by restore_command itself (main hands it over), as hack/restore.sh parsed its flags.
    commands.add_parser("restore", help="restore a backup into a namespace: all of hack/restore.sh", add_help=False)
    return parser


def cmd_export(args: argparse.Namespace, out: Output) -> int:
    source = export.Source(args.namespace, args.context, args.server)
    files = export.build(args.raw, source, args.model_store, datetime.now(UTC), out.say, out.warn)
    if args.dry_run:
        out.say(f"dry run: the backup would hold {len(files)} files")
        return EXIT_OK
    archive.write(args.out, files)
    return EXIT_OK


def dispatch(args: argparse.Namespace, out: Output) -> int:
    if args.command == "export":
        return cmd_export(args, out)
    summarise(archive.load(args.backup), out)  # verify
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    prog, rest = (words[1], words[2:]) if words[:1] == ["--prog"] and len(words) > 1 else ("restore", words)
    if rest[:1] == ["restore"]:
        return restore_command.main(rest[1:], prog)
    args = build_parser().parse_args(argv)
    out = Output(args.prog)
    try:
        return dispatch(args, out)
    except REPORTED_ERRORS as exc:
        print(f"{args.prog}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
