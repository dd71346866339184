"""Fast checks of the benchmark harness's pure parts. The benchmark itself runs only under `make bench`."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pytest

from tests.bench import report
from tests.bench.report import Check, LoadResult, TargetResult

WRK_STDOUT = """\
Running 10s test @ http://127.0.0.1:40000/v2/models/iris/infer
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.05ms  210.00us   9.87ms   91.00%
    Req/Sec     7.61k   312.00     8.02k    80.00%
  75720 requests in 10.00s, 21.38MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   7571.32
Transfer/sec:      2.14MB
SERVEKIT_BENCH_JSON {"requests": 75720, "duration_us": 10001000, "bytes": 22417000, "p50_us": 1012, \
"p90_us": 1200, "p99_us": 2230, "mean_us": 1050.5, "max_us": 9870, \
"errors": {"connect": 0, "read": 1, "write": 0, "status": 2, "timeout": 1}}
"""


def load(rps: float, p50: float = 1.0, p99: float = 2.0) -> LoadResult:
    return LoadResult(requests=int(rps * 10), duration_s=10.0, p50_ms=p50, p99_ms=p99, mean_ms=p50, max_ms=p99)


def row(key: str, rps: float | None, **kw: float) -> TargetResult:
    if rps is None:
        return TargetResult(key, f"({key})", status="not available", note="pip install failed")
    return TargetResult(key, f"({key})", load=load(rps, **kw))


def test_parse_wrk_output_reads_the_lua_summary() -> None:
    r = report.parse_wrk_output(WRK_STDOUT)
    assert r.requests == 75720
    assert r.duration_s == pytest.approx(10.001)
    assert r.rps == pytest.approx(7571.24, abs=0.01)
    assert r.p50_ms == pytest.approx(1.012)
    assert r.p99_ms == pytest.approx(2.230)
    assert r.mean_ms == pytest.approx(1.0505)
    assert r.max_ms == pytest.approx(9.870)
    # wrk's own "Non-2xx or 3xx" (3) beats errors.status (2), which leaves out 3xx.
    assert r.non_2xx == 3
    assert r.socket_errors == 2
    assert r.tool == "wrk"


def test_parse_wrk_output_without_summary_is_an_error() -> None:
    with pytest.raises(ValueError, match="no summary line"):
        report.parse_wrk_output("Requests/sec:   7571.32\n")


def test_lua_script_prints_the_marker_the_parser_looks_for() -> None:
    lua = (Path(report.__file__).parent / "wrk_report.lua").read_text()
    assert report.WRK_JSON_MARKER.strip() in lua
    for key in ("requests", "duration_us", "p50_us", "p99_us", "mean_us", "max_us", "status", "timeout"):
        assert f'"{key}"' in lua


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert report.percentile(values, 50) == 50.0
    assert report.percentile(values, 99) == 99.0
    assert report.percentile(values, 100) == 100.0
    assert report.percentile(values, 0) == 1.0
    assert report.percentile([7.0], 99) == 7.0
    assert math.isnan(report.percentile([], 50))


def test_summarize_latencies_converts_ns_to_ms() -> None:
    r = report.summarize_latencies([3_000_000, 1_000_000, 2_000_000, 4_000_000], 2.0, 1, 0, "python-asyncio")
    assert r.requests == 4
    assert r.rps == 2.0
    assert r.p50_ms == 2.0
    assert r.p99_ms == 4.0
    assert r.mean_ms == 2.5
    assert r.max_ms == 4.0
    assert r.non_2xx == 1
    assert r.to_dict()["rps"] == 2.0


def test_parse_http_head() -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: 123\r\n\r\n"
    assert report.parse_http_head(head) == (200, 123, False)
    head = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert report.parse_http_head(head) == (503, None, True)
    with pytest.raises(ValueError):
        report.parse_http_head(b"garbage\r\n\r\n")


def test_ratios_and_sklearn_targets() -> None:
    rows = {
        "a": row("a", 4000, p50=1.0, p99=2.5),
        "b": row("b", 1900),
        "c": row("c", 2000),
        "d": row("d", 7700),
    }
    assert report.ratio(rows["a"], rows["b"]) == pytest.approx(2.1053, abs=1e-4)
    checks = {c.name: c for c in report.sklearn_checks(rows)}
    assert checks["sklearn (a)/(b) plain KServe"].status == report.PASS
    # Exactly on the threshold passes.
    assert checks["sklearn (a)/(c) MLServer"].value == pytest.approx(2.0)
    assert checks["sklearn (a)/(c) MLServer"].status == report.PASS
    assert checks["sklearn (a)/(d) bare ASGI limit"].value == pytest.approx(0.5195, abs=1e-4)
    assert checks["sklearn (a)/(d) bare ASGI limit"].status == report.MISSED
    assert checks["sklearn (a) p99/p50"].value == pytest.approx(2.5)
    assert checks["sklearn (a) p99/p50"].status == report.PASS


def test_missing_targets_give_not_available_not_a_miss() -> None:
    rows = {"a": row("a", 4000), "c": row("c", None)}
    checks = {c.name: c for c in report.sklearn_checks(rows)}
    assert report.ratio(rows["a"], rows["c"]) is None
    assert checks["sklearn (a)/(c) MLServer"].status == report.NOT_AVAILABLE
    assert checks["sklearn (a)/(b) plain KServe"].status == report.NOT_AVAILABLE
    broken = TargetResult("a", "(a)", status="error", note="did not start")
    assert all(c.status == report.NOT_AVAILABLE for c in report.sklearn_checks({"a": broken, "b": row("b", 1)}))


def test_torch_and_startup_targets() -> None:
    assert report.torch_checks(row("on", 900), row("off", 200))[0].status == report.PASS
    missed = report.torch_checks(row("on", 600), row("off", 200))[0]
    assert missed.value == pytest.approx(3.0)
    assert missed.status == report.MISSED
    checks = report.startup_checks({"iris": 1.8, "digits": 5.2, "other": None})
    assert [c.status for c in checks] == [report.PASS, report.MISSED, report.NOT_AVAILABLE]
    assert Check("x", 5.0, "<=", 5.0, "s").to_dict()["status"] == report.PASS


def test_format_rows_and_checks() -> None:
    rows = {"a": row("a", 4000), "b": row("b", 2000), "c": row("c", None)}
    text = report.format_rows(list(rows.values()), {"vs b": rows["b"], "vs c": rows["c"]})
    lines = text.splitlines()
    header = ["target", "req/s", "p50 ms", "p99 ms", "p99/p50", "start s", "vs b", "vs c", "status"]
    assert [cell.strip() for cell in lines[0].split("  ") if cell.strip()] == header
    assert "4,000" in lines[2] and "2.00x" in lines[2] and lines[2].rstrip().endswith("ok")
    assert "1.00x" in lines[3]
    assert "not available: pip install failed" in lines[4]
    checks_text = report.format_checks(report.torch_checks(rows["b"], rows["a"]))
    assert "0.50x" in checks_text and checks_text.endswith("MISSED")


def test_long_notes_are_cut_in_the_table() -> None:
    r = TargetResult("b", "(b)", status="error", note="x" * 500)
    line = report.format_rows([r], {}).splitlines()[2]
    assert line.endswith("...")
    assert len(line) - line.index("error: xxx") == report.NOTE_WIDTH


def test_cpu_busy_fraction_from_proc_stat() -> None:
    before = report.cpu_times("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 50 0 50 350 50 0 0 0 0 0\n")
    after = report.cpu_times("cpu  250 0 150 900 100 0 0 0 0 0\n")
    assert before == (200, 1000)
    assert after == (400, 1400)
    assert report.busy_fraction(before, after) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        report.cpu_times("intr 1 2 3\n")


def test_combine_rounds_keeps_the_median_round_and_any_breakage() -> None:
    rounds = [
        {"a": row("a", 3000, p50=1.1), "b": row("b", 1000), "c": row("c", None)},
        {"a": row("a", 2000, p50=1.5), "b": TargetResult("b", "(b)", status="error", note="boom")},
        {"a": row("a", 4000, p50=0.9), "b": row("b", 1100), "c": row("c", None)},
    ]
    combined = report.combine_rounds(rounds)
    assert list(combined) == ["a", "b", "c"]
    assert combined["a"].load is not None
    assert combined["a"].load.rps == 3000
    assert combined["a"].load.p50_ms == 1.1  # latencies of the same round, not mixed
    assert combined["a"].extra["rounds_rps"] == [3000.0, 2000.0, 4000.0]
    assert combined["b"].status == "error"
    assert combined["c"].status == "not available"
    two = report.combine_rounds([{"d": row("d", 10)}, {"d": row("d", 20)}])
    assert two["d"].load is not None and two["d"].load.rps == 10
    single = report.combine_rounds([{"d": row("d", 10)}])
    assert "rounds_rps" not in single["d"].extra


def test_median() -> None:
    assert report.median([3.0, 1.0, 2.0]) == 2.0
    assert report.median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert math.isnan(report.median([]))


def test_command_line() -> None:
    from tests.bench.run import parse_args

    args = parse_args(["--quick", "--targets", "d,b"])
    assert (args.duration, args.warmup, args.startup_runs) == (3.0, 1.0, 1)
    assert args.targets == ["b", "d"]
    assert (args.connections, args.torch_connections, args.threads) == (8, 32, 1)
    with pytest.raises(SystemExit):
        parse_args(["--targets", "e"])


def test_bare_asgi_app_answers_like_the_predictor() -> None:
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from tests.bench.bare_asgi import make_app

    iris = load_iris()
    model = LogisticRegression(max_iter=1000).fit(iris.data, iris.target)
    app = make_app(model, "iris")
    body = json.dumps({"inputs": [{"name": "features", "shape": [2, 4], "datatype": "FP32", "data": [
        5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]}).encode()  # fmt: skip

    async def call(method: str, path: str, payload: bytes) -> tuple[int, bytes]:
        sent: list[dict[str, object]] = []

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": payload, "more_body": False}

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        await app({"type": "http", "method": method, "path": path}, receive, send)
        return int(sent[0]["status"]), bytes(sent[1]["body"])  # type: ignore[call-overload,arg-type]

    status, raw = asyncio.run(call("POST", "/v2/models/iris/infer", body))
    assert status == 200
    answer = json.loads(raw)
    outputs = {o["name"]: o for o in answer["outputs"]}
    expected = model.predict(np.asarray([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32))
    assert outputs["label"]["data"] == [int(v) for v in expected] == [0, 2]
    assert outputs["label"]["datatype"] == "INT64"
    assert outputs["probabilities"]["shape"] == [2, 3]
    assert sum(outputs["probabilities"]["data"][:3]) == pytest.approx(1.0, abs=1e-5)
    assert asyncio.run(call("GET", "/v2/models/iris/ready", b""))[0] == 200
    assert asyncio.run(call("GET", "/nope", b""))[0] == 404
    assert asyncio.run(call("POST", "/v2/models/iris/infer", b'{"inputs": []}'))[0] == 400


def test_workers_checks_and_request_counts() -> None:
    w1, w2 = row("w1", 3000), row("w2", 3600)
    w1.extra.update(client_completed=1000, server_counted=1008)
    w2.extra.update(client_completed=1200, server_counted=1190)  # ten answers never counted: a miss
    checks = report.workers_checks({"w1": w1, "w2": w2}, connections=8)
    assert checks[0].value == pytest.approx(1.2) and checks[0].status == report.PASS
    assert [(c.value, c.status) for c in checks[1:3]] == [(8.0, report.PASS), (8.0, report.PASS)]
    assert [(c.value, c.status) for c in checks[3:5]] == [(-10.0, report.MISSED), (-10.0, report.PASS)]
    too_many = row("w2", 3600)
    too_many.extra.update(client_completed=1200, server_counted=1217)  # more than 2 x 8 in flight
    assert report.workers_checks({"w2": too_many}, connections=8)[2].status == report.MISSED


def test_requests_total_sums_every_label_set() -> None:
    text = (
        "# HELP servekit_requests_total Inference requests answered.\n"
        "# TYPE servekit_requests_total counter\n"
        'servekit_requests_total{code="200",model="iris",protocol="v2"} 10.0\n'
        'servekit_requests_total{code="400",model="iris",protocol="v1"} 2.0\n'
        'servekit_requests_created{code="200",model="iris",protocol="v2"} 1.7e9\n'
        'servekit_request_duration_seconds_count{model="iris",protocol="v2"} 10.0\n'
    )
    assert report.requests_total(text) == 12.0
    assert report.requests_total("") == 0.0


def test_monitoring_costs_at_most_three_percent() -> None:
    on, off = row("on", 2925), row("off", 3000)
    (check,) = report.monitoring_checks({"on": on, "off": off})
    assert check.value == pytest.approx(0.975) and check.status == report.PASS
    (slow,) = report.monitoring_checks({"on": row("on", 2900), "off": off})
    assert slow.status == report.MISSED
