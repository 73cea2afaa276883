"""The bench's outputs: a table on stdout, a JSON file, and a PNG plot of latency against delivered load."""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from .profiles import BASELINES, FACE_TARGETS, SYSTEMS


def environment(cpus: tuple[set[int] | None, set[int] | None], fd_limit: int) -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for package in ("pricefeed", "picows", "uvloop", "websockets", "orjson", "matplotlib"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    server_cpus, client_cpus = cpus
    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpu_model": model,
            "cpu_count": os.cpu_count(), "server_cpus": sorted(server_cpus) if server_cpus else None,
            "client_cpus": sorted(client_cpus) if client_cpus else None, "fd_limit": fd_limit,
            "versions": versions}


def _runs(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(system, run) of every system measured in a scenario, in ``SYSTEMS`` order."""
    found = {"pricefeed": result.get("pricefeed"), **result.get("faces", {}), **result.get("baselines", {})}
    return [(name, found[name]) for name in SYSTEMS if found.get(name)]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return str(value)


COLUMNS: dict[str, list[tuple[str, str]]] = {
    "fanout": [("deliv/s p99 ok", "deliveries_per_s"), ("slots/s", "rate_slots_per_s"), ("p50 ms", "p50_ms"),
               ("p99 ms", "p99_ms"), ("p99 met", "p99_target_met"), ("peak deliv/s", "peak_deliveries_per_s"),
               ("peak deliv/cpu-s", "peak_deliveries_per_cpu_s"), ("server cpu", "server_cpu"),
               ("srv core", "server_core_busy"), ("client cpu", "client_cpu"), ("cli core", "client_core_busy")],
    "latency": [("deliveries/s", "deliveries_per_s"), ("offered/s", "offered_deliveries_per_s"),
                ("p50 ms", "p50_ms"), ("p99 ms", "p99_ms"), ("p99.9 ms", "p99_9_ms"), ("server cpu", "server_cpu"),
                ("srv core", "server_core_busy"), ("saturated", "saturated")],
    "idle": [("connections", "connected"), ("KiB/conn", "kib_per_connection"),
             ("RSS before", "server_rss_before_bytes"), ("RSS after", "server_rss_after_bytes"),
             ("connect s", "setup_s")],
    "slow": [("p99 without", "p99_without_ms"), ("p99 with", "p99_with_ms"), ("change %", "p99_change_pct"),
             ("deliv/s without", "deliveries_per_s_without"), ("deliv/s with", "deliveries_per_s_with"),
             ("RSS growth", "server_rss_growth_bytes"), ("slow closed", "slow_client_closed_by_server")],
}
STEP_COLUMNS = [("slots/s", "rate_slots_per_s"), ("offered/s", "offered_deliveries_per_s"),
                ("deliveries/s", "deliveries_per_s"), ("p50 ms", "p50_ms"), ("p99 ms", "p99_ms"),
                ("deliv/cpu-s", "deliveries_per_cpu_s"), ("server cpu", "server_cpu")]


def _grid(rows: list[list[str]], indent: str = "") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.rjust(width) if i else cell.ljust(width)
                               for i, (cell, width) in enumerate(zip(row, widths, strict=True))) for row in rows]


def _step_notes(step: dict[str, Any]) -> str:
    notes = [note for note, flag in (("saturated", step.get("saturated") and not step.get("error")),
                                     ("retried", step.get("retried"))) if flag]
    if step.get("closed_connections"):
        notes.append(f"{step['closed_connections']} closed by the server")
    if step.get("error"):
        notes.append(f"failed: {step['error'][:60]}")
    return ", ".join(notes)


def table(results: dict[str, Any]) -> str:
    lines: list[str] = []
    for scenario, result in results["scenarios"].items():
        columns = COLUMNS[scenario]
        runs = _runs(result)
        rows = [["system", *(title for title, _ in columns)]]
        rows += [[name, *(_fmt(run["figure"].get(key)) for _, key in columns)] for name, run in runs]
        lines.append(f"== {scenario}")
        lines += _grid(rows)
        for name, run in runs:
            for other in (*BASELINES, "pricefeed"):
                if f"vs_{other}" in run:
                    shown = ", ".join(f"{k} {_fmt(v)}" for k, v in run[f"vs_{other}"].items())
                    lines.append(f"  {name} vs {other}: {shown}")
        for key in ("target", *(face_target.key for face_target in FACE_TARGETS)):
            if key in result:
                verdict = {True: "MET", False: "NOT MET", None: "n/a"}[result[key]["met"]]
                lines.append(f"  {key.replace('_', ' ')} {verdict}: {result[key]['text']}")
        if scenario == "fanout":
            rows = [["  steps", *(title for title, _ in STEP_COLUMNS), "notes"]]
            for name, run in runs:
                rows += [[f"  {name}", *(_fmt(step.get(key)) for _, key in STEP_COLUMNS), _step_notes(step)]
                         for step in run.get("steps", [])]
            lines += _grid(rows)
        lines.append("")
    return "\n".join(lines)


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


COLOURS = {"pricefeed": "tab:blue", "hermes-ws": "tab:purple", "hermes-sse": "tab:orange", "streams": "tab:brown",
           "ceiling": "tab:green", "naive": "tab:red"}


def plot(results: dict[str, Any], path: Path) -> bool:
    """Two panels over delivered load, one line per system, from the fan-out (and latency) steps: latency
    (p50 and p99), and deliveries per server CPU-second with the faces' targets (a share of the seed-000
    face's peak). False (and nothing written) when matplotlib is missing or nothing was measured."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    points: dict[str, list[dict[str, Any]]] = {}
    for scenario in ("fanout", "latency"):
        result = results["scenarios"].get(scenario)
        if result:
            for name, run in _runs(result):
                points.setdefault(name, []).extend(run.get("steps") or [run["figure"]])
    points = {name: sorted((s for s in steps if s.get("p99_ms") is not None), key=lambda s: s["deliveries_per_s"])
              for name, steps in points.items()}
    if not any(points.values()):
        return False
    fig, (latency, efficiency) = plt.subplots(1, 2, figsize=(13, 5))
    for name in SYSTEMS:
        steps = points.get(name)
        if not steps:
            continue
        x = [s["deliveries_per_s"] for s in steps]
        colour = COLOURS[name]
        latency.plot(x, [s["p99_ms"] for s in steps], "o-", color=colour, label=f"{name} p99")
        latency.plot(x, [s["p50_ms"] for s in steps], "s--", color=colour, alpha=0.6, label=f"{name} p50")
        per_cpu = [(d, s["deliveries_per_cpu_s"]) for d, s in zip(x, steps, strict=True) if s["deliveries_per_cpu_s"]]
        efficiency.plot([d for d, _ in per_cpu], [c for _, c in per_cpu], "o-", color=colour, label=name)
    fanout = results["scenarios"].get("fanout") or {}
    seed000_peak = (fanout.get("pricefeed") or {}).get("figure", {}).get("peak_deliveries_per_cpu_s")
    for face_target in FACE_TARGETS:
        verdict = fanout.get(face_target.key)
        if verdict and seed000_peak:
            faces = ", ".join(verdict["faces"])
            efficiency.axhline(verdict["share"] * seed000_peak, color=COLOURS[face_target.faces[0]], linestyle=":",
                               label=f"{faces} target: {verdict['share']:g}x seed-000 peak")
    limit = results.get("profile", {}).get("p99_limit_ms")
    if limit:
        latency.axhline(limit, color="grey", linestyle=":", label=f"p99 limit {limit:g} ms")
    clients = results.get("profile", {}).get("fanout_clients")
    for ax in (latency, efficiency):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("delivered price updates per second (all clients)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    latency.set_ylabel("end-to-end latency, ms (publish_time has 1 ms resolution)")
    latency.set_title(f"latency vs delivered load ({clients} clients, server on one core)")
    efficiency.set_ylabel("deliveries per server CPU-second")
    efficiency.set_title("server efficiency vs delivered load")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
