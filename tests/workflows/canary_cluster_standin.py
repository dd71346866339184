"""Stand-ins for `servekit-canary` and `kubectl`, as far as hack/model-release.sh uses them.

hack/model-release.sh is glue: it starts a canary, then takes the verdict from `servekit-canary run`'s
exit status or from a CanaryAnalysis's status.phase. Its own logic (which commands, with which flags,
how a verdict is read, what an old verdict is, timeouts, port-forwards) is what these stand-ins let
the tests run for real. The canary tool and the controller themselves are tested against a real API
server where they live (issue 8's tests/cluster).

Run as `python canary_cluster_standin.py TOOL ARGS...`; STANDIN_STATE names a JSON file with the script
of the run and receives every call:

    start_exit, run_exit, apply_exit   exit statuses of `servekit-canary start|run`, `kubectl apply`
    phase_before                       the CanaryAnalysis's phase before `start` ("" = no status)
    phases                             its phases after `start`, one per read, the last one repeating;
                                       "=" is the status from before, unchanged
    calls, applied, started            written here
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FORWARDED_PORT = 45678
CANARY_RESOURCE = "canaryanalyses.servekit.dev"


@contextmanager
def state() -> Iterator[dict[str, Any]]:
    """The shared state, locked: a port-forward runs in the background while the other tool runs."""
    path = Path(os.environ["STANDIN_STATE"])
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text())
        yield data
        path.write_text(json.dumps(data))


def status_of(phase: str, rollout: int) -> str:
    """What `-o jsonpath='{.status.phase}{"\\n"}{.status}'` prints: the phase, then the status."""
    if not phase:
        return "\n"
    return f"{phase}\n{json.dumps({'phase': phase, 'rollout': rollout})}"


def servekit_canary(args: list[str]) -> int:
    with state() as data:
        data["calls"].append(["servekit-canary", *args])
        if args[0] == "start":
            data["started"] = data["start_exit"] == 0
            return int(data["start_exit"])
        if args[0] == "run":
            return int(data["run_exit"])
    return 0


def read_analysis(data: dict[str, Any]) -> str:
    if not data["started"]:
        return status_of(data["phase_before"], rollout=0)
    phases = data["phases"]
    phase = phases.pop(0) if len(phases) > 1 else phases[0]
    return status_of(data["phase_before"], 0) if phase == "=" else status_of(phase, rollout=1)


def kubectl(args: list[str]) -> int:
    with state() as data:
        data["calls"].append(["kubectl", *args])
        if args[0] == "apply":
            data["applied"] = sys.stdin.read()
            return int(data["apply_exit"])
        if "get" in args and CANARY_RESOURCE in args:
            print(read_analysis(data), end="")
            return 0
        if "get" in args and "events" in args:
            print("5s  Warning  RolledBack  inferenceservice/iris  canary v2 failed 2 checks")
            return 0
        if "port-forward" in args:
            data["port_forward_pid"] = os.getpid()
        else:
            print(f"kubectl stand-in: unexpected call {args}", file=sys.stderr)
            return 99
    # As kubectl does: say where it listens, then forward until it is stopped.
    print(f"Forwarding from 127.0.0.1:{FORWARDED_PORT} -> {args[-1].lstrip(':')}", flush=True)
    time.sleep(300)
    return 0


def main() -> int:
    tool, args = sys.argv[1], sys.argv[2:]
    return {"servekit-canary": servekit_canary, "kubectl": kubectl}[tool](args)


if __name__ == "__main__":
    sys.exit(main())
