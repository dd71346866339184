"""`release`: roll out a new model version as a canary and see it through to its verdict (what
hack/model-release.sh and .github/workflows/model-release.yml run).

`servekit-canary start` puts the new version beside the stable one, then
  --mode cli         `servekit-canary run` analyses the Prometheus metrics from here and promotes the
                     canary or rolls it back; its exit status is the verdict;
  --mode controller  a CanaryAnalysis is applied first, the controller in the cluster does the
                     analysis, and this waits for its status.phase: Succeeded or Failed.

Each step runs as the command a person would type (`servekit-canary start|run`, `kubectl apply|get|
port-forward`), from PATH: a release is that sequence, and its log shows each one; tests replace
the two tools with stand-ins (tests/workflows/canary_cluster_standin.py).

Exit status: 0 promoted, 1 rolled back, 2 bad usage, a tool or API error, or no verdict in time.
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import yaml

from predictor.canary.commands.output import EXIT_ERROR, EXIT_OK, EXIT_ROLLED_BACK
from predictor.canary.commands.release_settings import Release, build_release_parser, release_from_args

CANARY_RESOURCE = "canaryanalyses.servekit.dev"
FIELD_MANAGER = "servekit-model-release"
# Seconds between reads of the CanaryAnalysis (controller mode); tests make it short.
POLL_SECONDS_ENV = "MODEL_RELEASE_POLL_SECONDS"
PORT_FORWARD_START_SECONDS = 30
TOOL_HINTS = {"kubectl": "install kubectl >= 1.29 (https://kubernetes.io/docs/tasks/tools/)"}


class ReleaseError(Exception):
    """A tool or API problem: exit status 2, so that 1 always means "rolled back"."""


# --- the steps --------------------------------------------------------------------------------------


class ReleaseRun:
    """One release: its messages, its commands (or, with --dry-run, the lines that show them)."""

    def __init__(self, release: Release) -> None:
        self.release = release
        self.poll_seconds = float(os.environ.get(POLL_SECONDS_ENV) or 10)

    def log(self, message: str) -> None:
        print(f"{self.release.prog}: {message}", flush=True)

    def run_or_show(self, command: Sequence[str]) -> int:
        """Run COMMAND; with --dry-run print it as a shell line instead (quoted only where needed)."""
        if self.release.dry_run:
            words = [w if re.fullmatch(r"[A-Za-z0-9_./:,=@%+-]+", w) else shlex.quote(w) for w in command]
            print(f"would run: {' '.join(words)}", flush=True)
            return 0
        return subprocess.run(list(command), check=False).returncode

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, check=False)

    def start_canary(self) -> None:
        r = self.release
        command = ["servekit-canary", "start", r.isvc, "--namespace", r.namespace, "--name", r.name]
        for flag, value in (("--storage-uri", r.storage_uri), ("--image", r.image), ("--weight", r.weight)):
            if value:
                command += [flag, value]
        self.log(f"starting canary '{r.name}' on inferenceservice {r.namespace}/{r.isvc}")
        status = self.run_or_show(command)
        if status != 0:
            raise ReleaseError(f"servekit-canary start failed (exit status {status})")

    def with_cli(self) -> int:
        """cli mode: the analysis runs in this process tree; `servekit-canary run`'s status is the verdict."""
        r = self.release
        with self.prometheus_url() as url:
            self.start_canary()
            self.log(f"analysing canary '{r.name}' against {url}")
            command = ["servekit-canary", "run", r.isvc, "--namespace", r.namespace, "--prometheus-url", url]
            return self.verdict(self.run_or_show([*command, *r.analysis_flags()]))

    @contextmanager
    def prometheus_url(self) -> Iterator[str]:
        """--prometheus-url, or a local port kubectl port-forwards to --prometheus-service, stopped after."""
        r = self.release
        if not r.prometheus_service:
            yield r.prometheus_url
            return
        service, _, port = r.prometheus_service.rpartition(":")
        namespace, _, name = service.partition("/")
        if r.dry_run:
            self.log(f"would port-forward to {namespace}/service/{name}:{port}")
            yield "http://127.0.0.1:FORWARDED-PORT"
            return
        with port_forward(namespace, f"service/{name}", port) as local_port:
            self.log(f"port-forward: 127.0.0.1:{local_port} -> {namespace}/service/{name}:{port}")
            yield f"http://127.0.0.1:{local_port}"

    def analysis_state(self) -> str:
        """The CanaryAnalysis as PHASE, a newline, its status as JSON; empty while it has no status."""
        r = self.release
        jsonpath = 'jsonpath={.status.phase}{"\\n"}{.status}'
        read = self.kubectl("-n", r.namespace, "get", CANARY_RESOURCE, r.isvc, "-o", jsonpath)
        if read.returncode != 0:
            raise ReleaseError(f"could not read CanaryAnalysis {r.namespace}/{r.isvc}: {read.stderr.strip()}")
        return read.stdout

    def with_controller(self) -> int:
        """controller mode: the controller in the cluster analyses; its status.phase is the verdict. A
        verdict counts only once the status differs from the one before `start`, so the phase left by
        an earlier rollout is never taken for this one's."""
        r = self.release
        manifest = yaml.safe_dump(r.canary_analysis(), sort_keys=False).rstrip("\n")
        if r.dry_run:
            print(f"would apply:\n{manifest}", flush=True)
            self.start_canary()
            return EXIT_OK
        self.log(f"applying CanaryAnalysis {r.namespace}/{r.isvc}")
        applied = self.kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-", stdin=manifest)
        if applied.returncode != 0:
            sys.stderr.write(applied.stderr)
            raise ReleaseError(
                f"could not apply CanaryAnalysis {r.namespace}/{r.isvc} "
                "(is the servekit-canary controller's CRD installed?)"
            )
        before = self.analysis_state()
        self.start_canary()
        deadline = time.monotonic() + r.timeout
        last, gate_noted = "", False
        while True:
            state = self.analysis_state()
            phase = state.split("\n", 1)[0]
            if phase != last:
                self.log(f"CanaryAnalysis {r.namespace}/{r.isvc}: phase {phase or '(none yet)'}")
                last = phase
            if state != before:
                if phase == "Succeeded":
                    return self.verdict(EXIT_OK)
                if phase == "Failed":
                    return self.verdict(EXIT_ROLLED_BACK)
                if phase == "Paused" and not gate_noted:
                    gate = f"servekit-canary promote {r.isvc} --namespace {r.namespace}"
                    self.log(f"held at a manual gate: '{gate}' lets it go on")
                    gate_noted = True
            if time.monotonic() >= deadline:
                raise ReleaseError(
                    f"no verdict from the controller within {r.timeout}s (phase {phase or 'none'}); "
                    "the canary is still in place"
                )
            time.sleep(self.poll_seconds)

    def verdict(self, status: int) -> int:
        """Say what happened; the exit status keeps `servekit-canary run`'s convention."""
        r = self.release
        if status == EXIT_OK:
            if not r.dry_run:
                self.log(f"PROMOTED: canary '{r.name}' now serves all of {r.namespace}/{r.isvc}")
            return EXIT_OK
        if status == EXIT_ROLLED_BACK:
            self.log(f"ROLLED BACK: canary '{r.name}' of {r.namespace}/{r.isvc} failed its analysis")
            self.show_rollback_events()
            return EXIT_ROLLED_BACK
        raise ReleaseError(f"the rollout of canary '{r.name}' stopped with exit status {status} (usage or API error)")

    def show_rollback_events(self) -> None:
        """What the controller and KServe recorded about the InferenceService (stderr). Never fails."""
        r = self.release
        if shutil.which("kubectl") is None:
            return
        events = self.kubectl(
            "-n", r.namespace, "get", "events", "--field-selector", f"involvedObject.name={r.isvc}",
            "--sort-by=.lastTimestamp",
        )  # fmt: skip
        lines = (events.stdout + events.stderr).splitlines()[-20:]
        print("\n".join([f"----- events of inferenceservice {r.namespace}/{r.isvc}", *lines]), file=sys.stderr)


@contextmanager
def port_forward(namespace: str, target: str, remote_port: str) -> Iterator[str]:
    """`kubectl port-forward` on a free local port; the port, while it runs; stopped after."""
    command = ["kubectl", "-n", namespace, "port-forward", target, f":{remote_port}"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def read(stream: Any) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, args=(process.stdout,), daemon=True).start()
    try:
        yield _forwarded_port(lines, f"{namespace}/{target}", time.monotonic() + PORT_FORWARD_START_SECONDS)
    finally:
        process.terminate()
        process.wait()


def _forwarded_port(lines: queue.Queue[str | None], target: str, deadline: float) -> str:
    seen: list[str] = []
    while True:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0))
        except queue.Empty:
            line = None
        if line is None:
            sys.stderr.write("".join(seen))
            raise ReleaseError(f"kubectl port-forward to {target} did not start")
        seen.append(line)
        match = re.match(r"Forwarding from 127\.0\.0\.1:([0-9]+) ", line)
        if match:
            return match.group(1)


def missing_tools(release: Release) -> list[str]:
    needed = ["servekit-canary"]
    if release.mode == "controller" or release.prometheus_service:
        needed.append("kubectl")
    return [tool for tool in needed if shutil.which(tool) is None]


def _exit_on_sigterm(signum: int, frame: Any) -> NoReturn:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str], prog: str = "servekit-canary release") -> int:
    """`servekit-canary release ARGS`, or `python -m predictor.canary.commands.release --prog NAME ARGS`
    (hack/model-release.sh: its messages then start with its own name)."""
    argv = list(argv)
    if argv[:1] == ["--prog"] and len(argv) > 1:
        prog, argv = argv[1], argv[2:]
    parser = build_release_parser(prog)
    release = release_from_args(parser.parse_args(argv), parser)
    if not release.dry_run:
        missing = missing_tools(release)
        for tool in missing:
            hint = TOOL_HINTS.get(tool, "install it and put it on PATH")
            print(f"{release.prog}: error: {tool} is required: {hint}", file=sys.stderr)
        if missing:
            return EXIT_ERROR
    run = ReleaseRun(release)
    # A cancelled workflow stops the job with SIGTERM: leave through the `finally`s, so that a
    # port-forward this started is stopped too.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return run.with_cli() if release.mode == "cli" else run.with_controller()
    except ReleaseError as exc:
        print(f"{release.prog}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
