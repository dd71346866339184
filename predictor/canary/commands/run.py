"""`run`: analyse the canary step by step (one rollout.step per look) until it is promoted or
rolled back; the state is kept in the history ConfigMap, so an interrupted run goes on."""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO

from predictor.canary import display, isvc, rollout
from predictor.canary.commands.analysis_flags import analysis_spec
from predictor.canary.commands.output import EXIT_OK, EXIT_ROLLED_BACK, PROG, UsageError
from predictor.canary.commands.show import rollout_state
from predictor.canary.rollout import Edges
from predictor.canary.state import ACTIVE, TERMINAL, Phase, RolloutState


def cmd_run(args: argparse.Namespace, edges: Edges, out: IO[str]) -> int:
    spec = analysis_spec(args)
    obj = edges.isvcs.get(args.namespace, args.isvc)
    view = isvc.view(obj)
    current = rollout_state(edges, args.namespace, args.isvc) or RolloutState()
    if not view.present and current.phase not in ACTIVE:
        raise UsageError(f"InferenceService {args.namespace}/{args.isvc} has no canary: `{PROG} start` one first")
    shown = display.for_stream(out) if args.output == "text" else display.PlainDisplay(sys.stderr)
    try:
        while True:
            before, current = current, rollout.step(edges, spec, args.namespace, args.isvc, current)
            if current != before:
                edges.history.write_rollout(args.namespace, args.isvc, current.to_dict())
            shown.update(isvc.view(edges.isvcs.get(args.namespace, args.isvc)), current)
            if current.phase in TERMINAL and current.finished:
                break
            edges.sleep(args.poll)
    finally:
        shown.close()
    if args.output == "json":
        print(json.dumps(current.to_dict(), indent=2), file=out)
    return EXIT_OK if current.phase == Phase.SUCCEEDED else EXIT_ROLLED_BACK
