"""`status` and `history`: what the InferenceService, its rollout and its history say now."""

from __future__ import annotations

import argparse
from typing import IO, Any

from predictor.canary import history, isvc, rollout
from predictor.canary.commands.output import EXIT_OK, emit
from predictor.canary.rollout import Edges
from predictor.canary.state import RolloutState
from predictor.kube_object import Obj


def rollout_state(edges: Edges, namespace: str, name: str) -> RolloutState | None:
    """The state a `run` kept (in the history ConfigMap), if any."""
    kept = edges.history.read_rollout(namespace, name)
    return RolloutState.from_dict(kept) if kept else None


def describe(obj: Obj, stable_checksum: str | None, kept: RolloutState | None) -> dict[str, Any]:
    view = isvc.view(obj, stable_checksum)
    return {
        "namespace": view.namespace,
        "name": view.isvc,
        "mode": str(view.mode),
        "stable": view.stable,
        "canary": view.canary,
        "weight": view.weight,
        "ready": view.ready if view.present else None,
        "checksum": view.checksum,
        "restoring": view.restoring,
        "rollout": kept.to_dict() if kept else None,
    }


def status_text(info: dict[str, Any]) -> str:
    lines = [
        f"InferenceService {info['namespace']}/{info['name']} ({info['mode']} mode)",
        f"  stable: {info['stable'] or '-'}",
    ]
    if info["canary"]:
        ready = "ready" if info["ready"] else "not ready"
        lines.append(f"  canary: {info['canary']} at {info['weight']}% ({ready})")
    elif info["restoring"]:
        lines.append("  canary: none (a rolled-back spec waits at 0% for its revision)")
    else:
        lines.append("  canary: none")
    kept = info["rollout"]
    if kept:
        lines.append(f"  rollout: {kept['phase']}, {kept['failed_checks']} failed checks: {kept['message']}")
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace, edges: Edges, out: IO[str]) -> int:
    obj = edges.isvcs.get(args.namespace, args.isvc)
    checksum = rollout.stable_checksum(edges.history.read(args.namespace, args.isvc))
    info = describe(obj, checksum, rollout_state(edges, args.namespace, args.isvc))
    emit(args, out, info, status_text(info))
    return EXIT_OK


def cmd_history(args: argparse.Namespace, edges: Edges, out: IO[str]) -> int:
    entries = edges.history.read(args.namespace, args.isvc)
    rows = [f"{e.revision:>4}  {e.time}  {e.action:<10}  {_entry_summary(e)}" for e in entries]
    text = "\n".join(["REV   TIME                  ACTION      SPECS", *rows]) if rows else "no history yet"
    emit(args, out, [entry.to_dict() for entry in entries], text)
    return EXIT_OK


def _entry_summary(entry: history.Entry) -> str:
    parts = [f"predictor {entry.predictor.get('name') or '(unnamed)'}"]
    if isvc.CANARY_PERCENT in entry.predictor:
        parts.append(f"canaryTrafficPercent {entry.predictor[isvc.CANARY_PERCENT]}")
    for item in entry.canary or []:
        parts.append(f"canary {item.get('predictor', {}).get('name')} at {item.get('trafficPercent')}%")
    return ", ".join(parts)
