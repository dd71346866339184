"""What ``servekit-canary run`` shows while it works: a live rich view in a terminal, plain lines
(one per change) when the output is a file or a pipe (CI logs, ``kubectl logs``)."""

from __future__ import annotations

import sys
from typing import IO, Any, Protocol

from predictor.canary.isvc import CanaryView
from predictor.canary.state import Phase, RolloutState

PHASE_STYLES = {
    Phase.IDLE: "dim",
    Phase.PROGRESSING: "cyan",
    Phase.PAUSED: "yellow",
    Phase.SUCCEEDED: "bold green",
    Phase.FAILED: "bold red",
}


class RolloutDisplay(Protocol):
    def update(self, view: CanaryView, state: RolloutState) -> None: ...

    def close(self) -> None: ...


def status_line(view: CanaryView, state: RolloutState) -> str:
    """One plain line: phase, weight, checks, and what happened last."""
    canary = view.canary or state.canary or "-"
    return (
        f"{view.namespace}/{view.isvc} {state.phase} canary={canary} weight={state.weight}% "
        f"failed_checks={state.failed_checks} iterations={state.iterations}: {state.message}"
    )


class PlainDisplay:
    """A line whenever the state changes; nothing while it holds still."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._last = ""

    def update(self, view: CanaryView, state: RolloutState) -> None:
        line = status_line(view, state)
        if line != self._last:
            print(line, file=self._stream, flush=True)
            self._last = line

    def close(self) -> None:
        pass


class LiveDisplay:
    """A table redrawn in place: the rollout, then every check of the last analysis."""

    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console
        from rich.live import Live

        self._console = Console(file=stream, force_terminal=True)
        self._live = Live(console=self._console, auto_refresh=False, transient=False)
        self._live.start()

    def _render(self, view: CanaryView, state: RolloutState) -> Any:
        from rich.table import Table

        table = Table(title=f"canary rollout of {view.namespace}/{view.isvc} ({view.mode} mode)", expand=False)
        table.add_column("")
        table.add_column("")
        style = PHASE_STYLES.get(state.phase, "")
        table.add_row("phase", f"[{style}]{state.phase}[/]")
        table.add_row(
            "canary", f"{view.canary or state.canary or '-'} at {state.weight}% (stable {view.stable or '-'})"
        )
        table.add_row("checks", f"{state.failed_checks} failed, {state.iterations} analyses")
        table.add_row("last", state.message)
        result = state.analysis()
        for check in result.checks if result else []:
            mark = "[green]pass[/]" if check.passed else "[red]fail[/]"
            table.add_row(f"  {check.name}", f"{mark} {check.detail}")
        return table

    def update(self, view: CanaryView, state: RolloutState) -> None:
        self._live.update(self._render(view, state), refresh=True)

    def close(self) -> None:
        self._live.stop()


def for_stream(stream: IO[str] | None = None) -> RolloutDisplay:
    """The live view on a terminal, plain lines elsewhere."""
    stream = stream or sys.stdout
    isatty = getattr(stream, "isatty", None)
    return LiveDisplay(stream) if isatty is not None and isatty() else PlainDisplay(stream)
