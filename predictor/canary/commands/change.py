"""The commands that change the InferenceService: start, set-weight, promote, rollback, restore.
Each shows a diff with --dry-run, and otherwise writes the change and records it in the history."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Callable
from typing import IO

import yaml

from predictor.canary import history, isvc, rollout
from predictor.canary.commands.output import EXIT_OK, emit
from predictor.canary.commands.show import describe, rollout_state, status_text
from predictor.canary.rollout import Edges
from predictor.kube_object import Obj


def spec_diff(before: Obj, after: Obj, name: str) -> str:
    def lines(obj: Obj) -> list[str]:
        return yaml.safe_dump({"spec": obj.get("spec", {})}, sort_keys=False).splitlines(keepends=True)

    diff = difflib.unified_diff(lines(before), lines(after), f"{name} (now)", f"{name} (after)")
    return "".join(diff) or "no change\n"


def apply_change(
    args: argparse.Namespace, edges: Edges, out: IO[str], action: str, change: Callable[[Obj], Obj]
) -> int:
    """--dry-run: the diff; otherwise write, record the history, and show the result."""
    current = edges.isvcs.get(args.namespace, args.isvc)
    try:
        after = change(current)
    except isvc.NoCanary as exc:
        emit(args, out, {"changed": False, "message": str(exc)}, f"nothing to do: {exc}")
        return EXIT_OK
    if args.dry_run:
        emit(args, out, {"dryRun": True, "spec": after.get("spec")}, spec_diff(current, after, args.isvc).rstrip("\n"))
        return EXIT_OK
    if action == "start":
        rollout.record_baseline(edges, args.namespace, args.isvc, current)
    written = rollout.change_isvc(edges, args.namespace, args.isvc, action, change, f"servekit-canary {action}")
    checksum = rollout.stable_checksum(edges.history.read(args.namespace, args.isvc))
    info = describe(written, checksum, rollout_state(edges, args.namespace, args.isvc))
    changed = written.get("spec") != current.get("spec")
    done = "done" if changed else "nothing to change"
    emit(args, out, {"changed": changed, "action": action, **info}, f"{action}: {done}\n{status_text(info)}")
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace, edges: Edges, out: IO[str]) -> int:
    entries = edges.history.read(args.namespace, args.isvc)
    checksum = rollout.stable_checksum(entries)
    current = isvc.view(edges.isvcs.get(args.namespace, args.isvc), checksum)
    if current.restoring and not args.dry_run:
        return _settle(args, edges, out, checksum)
    previous = history.last_stable_predictor(entries)
    return apply_change(args, edges, out, "rollback", lambda obj: isvc.rollback(obj, previous))


def _settle(args: argparse.Namespace, edges: Edges, out: IO[str], checksum: str | None) -> int:
    written = edges.isvcs.update(args.namespace, args.isvc, lambda obj: isvc.settle(obj, checksum))
    info = describe(written, checksum, rollout_state(edges, args.namespace, args.isvc))
    text = (
        "rollback finished: the restored spec serves all traffic"
        if not info["restoring"]
        else ("the restored revision is not ready yet; run rollback again later (the controller does it by itself)")
    )
    emit(args, out, {"changed": not info["restoring"], **info}, f"{text}\n{status_text(info)}")
    return EXIT_OK


def cmd_restore(args: argparse.Namespace, edges: Edges, out: IO[str]) -> int:
    entry = history.find(edges.history.read(args.namespace, args.isvc), args.revision)
    return apply_change(args, edges, out, "restore", lambda obj: isvc.restore(obj, entry.predictor, entry.canary))
