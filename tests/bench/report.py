"""The benchmark's pure parts: parsing load-tool output, percentiles, ratios, targets and the table.

Nothing here starts a process or opens a socket, so the smoke tests can check it quickly.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

# The Lua script prints its summary on one line after this marker, so it can be told from wrk's own text.
WRK_JSON_MARKER = "SERVEKIT_BENCH_JSON "

# Targets from issue 3; checked as ratios within one run, never in timed tests.
MIN_RATIO_TO_PLAIN_KSERVE = 2.0
MIN_RATIO_TO_MLSERVER = 2.0
MIN_RATIO_TO_BARE = 0.6
MAX_P99_OVER_P50 = 3.0
MIN_BATCHING_SPEEDUP = 4.0
MAX_STARTUP_S = 5.0
# Issue 11, on the 2-core machine: --workers 2 beats one worker in the same run.
MIN_WORKERS_SPEEDUP = 1.0
# Issue 20: prediction counting, drift and the answer store cost at most 3 % of throughput.
MIN_MONITORING_RATIO = 0.97

PASS = "PASS"
MISSED = "MISSED"
NOT_AVAILABLE = "n/a"


@dataclass
class LoadResult:
    """What one load run against one server measured."""

    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    non_2xx: int = 0
    socket_errors: int = 0
    tool: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rps"] = round(self.rps, 1)
        return d


@dataclass
class TargetResult:
    """One row of a table: a server under load, or why it could not be measured."""

    key: str
    label: str
    status: str = "ok"  # "ok", "not available" or "error"
    load: LoadResult | None = None
    startup_s: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.load is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "status": self.status,
            "load": self.load.to_dict() if self.load else None,
            "startup_s": self.startup_s,
            "note": self.note,
            **self.extra,
        }


@dataclass
class Check:
    """One target of the issue, judged against this run's numbers."""

    name: str
    value: float | None
    op: str  # ">=" or "<="
    threshold: float
    unit: str = "x"

    @property
    def status(self) -> str:
        if self.value is None or math.isnan(self.value):
            return NOT_AVAILABLE
        ok = self.value >= self.threshold if self.op == ">=" else self.value <= self.threshold
        return PASS if ok else MISSED

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": None if self.value is None else round(self.value, 3),
            "op": self.op,
            "threshold": self.threshold,
            "unit": self.unit,
            "status": self.status,
        }


# --------------------------------------------------------------------------- parsing


def parse_wrk_output(text: str) -> LoadResult:
    """Read the summary that tests/bench/wrk_report.lua prints from wrk's ``done()`` hook.

    Latencies come from wrk in microseconds. ``Non-2xx or 3xx responses`` in wrk's own text is
    counted too: wrk's ``errors.status`` holds only codes above 399, so a 3xx would slip past it.
    """
    summary: dict[str, Any] | None = None
    for line in text.splitlines():
        if line.startswith(WRK_JSON_MARKER):
            summary = json.loads(line[len(WRK_JSON_MARKER) :])
    if summary is None:
        raise ValueError("wrk output has no summary line; was it run with tests/bench/wrk_report.lua?")
    errors = summary.get("errors", {})
    non_2xx = int(errors.get("status", 0))
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    if m:
        non_2xx = max(non_2xx, int(m.group(1)))
    socket_errors = sum(int(errors.get(k, 0)) for k in ("connect", "read", "write", "timeout"))
    return LoadResult(
        requests=int(summary["requests"]),
        duration_s=float(summary["duration_us"]) / 1e6,
        p50_ms=float(summary["p50_us"]) / 1e3,
        p99_ms=float(summary["p99_us"]) / 1e3,
        mean_ms=float(summary["mean_us"]) / 1e3,
        max_ms=float(summary["max_us"]) / 1e3,
        non_2xx=non_2xx,
        socket_errors=socket_errors,
        tool="wrk",
    )


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of values already sorted ascending."""
    if not sorted_values:
        return math.nan
    if q <= 0:
        return float(sorted_values[0])
    rank = math.ceil(q / 100.0 * len(sorted_values))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def summarize_latencies(
    latencies_ns: Iterable[int], duration_s: float, non_2xx: int, socket_errors: int, tool: str
) -> LoadResult:
    """Turn the Python load generator's raw per-request latencies into a LoadResult."""
    values = sorted(latencies_ns)
    ms = [v / 1e6 for v in values]
    return LoadResult(
        requests=len(ms),
        duration_s=duration_s,
        p50_ms=percentile(ms, 50),
        p99_ms=percentile(ms, 99),
        mean_ms=sum(ms) / len(ms) if ms else math.nan,
        max_ms=ms[-1] if ms else math.nan,
        non_2xx=non_2xx,
        socket_errors=socket_errors,
        tool=tool,
    )


def parse_http_head(head: bytes) -> tuple[int, int | None, bool]:
    """Status code, Content-Length (None when absent) and whether the body is chunked."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
        raise ValueError(f"not an HTTP response: {lines[0][:80]!r}")
    status = int(parts[1])
    length: int | None = None
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    return status, length, chunked


def cpu_times(proc_stat: str) -> tuple[int, int]:
    """(busy, total) jiffies from the aggregate ``cpu`` line of /proc/stat (idle and iowait are not busy)."""
    for line in proc_stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            values = [int(v) for v in fields[1:]]
            # user nice system idle iowait irq softirq steal [guest guest_nice, already in user/nice]
            total = sum(values[:8])
            idle = values[3] + (values[4] if len(values) > 4 else 0)
            return total - idle, total
    raise ValueError("no aggregate cpu line in /proc/stat")


def busy_fraction(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Share of all CPUs' time spent busy between two cpu_times() samples."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return busy / total if total > 0 else 0.0


# --------------------------------------------------------------------------- ratios and targets


def ratio(num: TargetResult | None, den: TargetResult | None) -> float | None:
    """Throughput of ``num`` over that of ``den``; None when either was not measured."""
    if num is None or den is None or not num.ok or not den.ok:
        return None
    assert num.load is not None and den.load is not None
    if den.load.rps <= 0:
        return None
    return num.load.rps / den.load.rps


def sklearn_checks(rows: Mapping[str, TargetResult]) -> list[Check]:
    """The issue's v2 REST targets for this predictor (a) against (b), (c) and (d)."""
    a = rows.get("a")
    tail = None
    if a is not None and a.ok:
        assert a.load is not None
        tail = a.load.p99_ms / a.load.p50_ms if a.load.p50_ms > 0 else None
    return [
        Check("sklearn (a)/(b) plain KServe", ratio(a, rows.get("b")), ">=", MIN_RATIO_TO_PLAIN_KSERVE),
        Check("sklearn (a)/(c) MLServer", ratio(a, rows.get("c")), ">=", MIN_RATIO_TO_MLSERVER),
        Check("sklearn (a)/(d) bare ASGI limit", ratio(a, rows.get("d")), ">=", MIN_RATIO_TO_BARE),
        Check("sklearn (a) p99/p50", tail, "<=", MAX_P99_OVER_P50),
    ]


def torch_checks(on: TargetResult | None, off: TargetResult | None) -> list[Check]:
    return [Check("torch batching on/off", ratio(on, off), ">=", MIN_BATCHING_SPEEDUP)]


def workers_checks(rows: Mapping[str, TargetResult], connections: int) -> list[Check]:
    """--workers 2 over 1; and for each run, the server's request count against the load tool's.

    The load tool counts the answers it read; at the end of each of its two phases (warm-up and
    measurement) up to ``connections`` answers were sent but not read, so the server may count
    that many more, never fewer.
    """
    checks = [Check("workers 2/1, iris", ratio(rows.get("w2"), rows.get("w1")), ">=", MIN_WORKERS_SPEEDUP)]
    for row in rows.values():
        counted, completed = row.extra.get("server_counted"), row.extra.get("client_completed")
        surplus = None if counted is None or completed is None else float(counted - completed)
        checks.append(Check(f"{row.label}: counted - answered", surplus, ">=", 0, unit=" req"))
        checks.append(Check(f"{row.label}: counted - answered", surplus, "<=", 2 * connections, unit=" req"))
    return checks


def monitoring_checks(rows: Mapping[str, TargetResult]) -> list[Check]:
    """Monitoring on (with a drift profile) over --no-monitoring, on iris (issue 20)."""
    return [Check("monitoring on/off, iris", ratio(rows.get("on"), rows.get("off")), ">=", MIN_MONITORING_RATIO)]


def requests_total(metrics_text: str) -> float:
    """The sum of every servekit_requests_total sample in a Prometheus text exposition."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith(("servekit_requests_total{", "servekit_requests_total ")):
            total += float(line.rsplit(" ", 1)[1])
    return total


def startup_checks(startup: Mapping[str, float | None]) -> list[Check]:
    return [Check(f"start-up {name}", value, "<=", MAX_STARTUP_S, unit="s") for name, value in startup.items()]


def combine_rounds(rounds: Sequence[Mapping[str, TargetResult]]) -> dict[str, TargetResult]:
    """One row per target from several interleaved rounds: the round with the median req/s (the lower
    middle one for an even count), so its latencies stay those of one real run. A target that broke
    in any round stays broken; one not available in any round stays so."""
    combined: dict[str, TargetResult] = {}
    keys = [k for rnd in rounds for k in rnd]
    for key in dict.fromkeys(keys):
        rows = [rnd[key] for rnd in rounds if key in rnd]
        bad = [r for r in rows if not r.ok]
        if bad:
            errors = [r for r in bad if r.status == "error"]
            combined[key] = errors[0] if errors else bad[0]
            continue
        ordered = sorted(rows, key=lambda r: r.load.rps if r.load else 0.0)
        chosen = ordered[(len(ordered) - 1) // 2]
        if len(rows) > 1:
            chosen.extra["rounds_rps"] = [round(r.load.rps, 1) for r in rows if r.load]
        combined[key] = chosen
    return combined


def median(values: Sequence[float]) -> float:
    if not values:
        return math.nan
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


# --------------------------------------------------------------------------- the table


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


NOTE_WIDTH = 60


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def format_rows(rows: Sequence[TargetResult], ratio_to: Mapping[str, TargetResult | None]) -> str:
    """A fixed-width table: one line per target, with req/s, latencies and the ratio of each row
    to the rows named in ``ratio_to`` (column header -> row)."""
    headers = ["target", "req/s", "p50 ms", "p99 ms", "p99/p50", "start s", *ratio_to.keys(), "status"]
    table: list[list[str]] = []
    for r in rows:
        load = r.load if r.ok else None
        tail = load.p99_ms / load.p50_ms if load and load.p50_ms > 0 else None
        cells = [
            r.label,
            _fmt(load.rps if load else None, ",.0f"),
            _fmt(load.p50_ms if load else None, ".2f"),
            _fmt(load.p99_ms if load else None, ".2f"),
            _fmt(tail, ".2f"),
            _fmt(r.startup_s, ".2f"),
        ]
        for den in ratio_to.values():
            cells.append(_fmt(ratio(r, den), ".2f") + ("x" if ratio(r, den) is not None else ""))
        cells.append(_shorten(r.status if not r.note else f"{r.status}: {r.note}", NOTE_WIDTH))
        table.append(cells)
    return fixed_width(headers, table)


def fixed_width(headers: Sequence[str], table: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell: the first and last (names, status) to the left, numbers
    to the right; a rule under the headers."""
    widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h) for i, h in enumerate(headers)]
    last = len(headers) - 1

    def line(cells: Sequence[str], header: bool) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 or (i == last and not header) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    lines = [line(headers, header=True), "  ".join("-" * w for w in widths)]
    lines += [line(row, header=False) for row in table]
    return "\n".join(text.rstrip() for text in lines)


def format_checks(checks: Sequence[Check]) -> str:
    lines = []
    width = max((len(c.name) for c in checks), default=10)
    for c in checks:
        value = _fmt(c.value, ".2f") + (c.unit if c.value is not None else " ")
        target = f"(target {c.op} {c.threshold:g}{c.unit})"
        lines.append(f"{c.name.ljust(width)}  {value.rjust(8)}  {target}  {c.status}")
    return "\n".join(lines)
