"""The bench's outputs: a table on stdout, a JSON file, and a PNG plot of latency against delivered load."""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

SYSTEM_ORDER = ("pricefeed", "streams", "ceiling", "naive")


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


def _systems(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = {"pricefeed": result.get("pricefeed"), **result.get("faces", {}), **result.get("baselines", {})}
    return [(name, found[name]["figure"]) for name in SYSTEM_ORDER if found.get(name)]


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
    "fanout": [("deliveries/s", "deliveries_per_s"), ("slots/s", "rate_slots_per_s"), ("p50 ms", "p50_ms"),
               ("p99 ms", "p99_ms"), ("p99.9 ms", "p99_9_ms"), ("server cpu", "server_cpu"),
               ("srv core", "server_core_busy"), ("deliv/cpu-s", "deliveries_per_cpu_s"), ("client cpu", "client_cpu"),
               ("cli core", "client_core_busy"),
               ("p99 met", "p99_target_met"), ("peak deliv/s", "peak_deliveries_per_s")],
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


def table(results: dict[str, Any]) -> str:
    lines: list[str] = []
    for scenario, result in results["scenarios"].items():
        columns = COLUMNS[scenario]
        rows = [["system", *(title for title, _ in columns)]]
        for name, figure in _systems(result):
            rows.append([name, *(_fmt(figure.get(key)) for _, key in columns)])
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines.append(f"== {scenario}")
        for row in rows:
            lines.append("  ".join(cell.rjust(width) if i else cell.ljust(width)
                                   for i, (cell, width) in enumerate(zip(row, widths, strict=True))))
        for name in ("vs_ceiling", "vs_naive"):
            if name in result:
                shown = ", ".join(f"{k} {_fmt(v)}" for k, v in result[name].items())
                lines.append(f"  {name}: {shown}")
        for name in result.get("faces", {}):
            if f"{name}_vs_seed000" in result:
                face = result[f"{name}_vs_seed000"]
                lines.append(f"  target {'MET' if face['met'] else 'NOT MET'}: {face['text']}")
        if "target" in result:
            target = result["target"]
            verdict = {True: "MET", False: "NOT MET", None: "n/a"}[target["met"]]
            lines.append(f"  target {verdict}: {target['text']}")
        lines.append("")
    return "\n".join(lines)


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def plot(results: dict[str, Any], path: Path) -> bool:
    """Latency (p50 and p99) against delivered load, one line per system, from the fan-out and latency
    steps. False (and nothing written) when matplotlib is missing or nothing was measured."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    points: dict[str, list[dict[str, Any]]] = {}
    for scenario in ("fanout", "latency"):
        result = results["scenarios"].get(scenario)
        if not result:
            continue
        runs = {"pricefeed": result.get("pricefeed"), **result.get("faces", {}), **result.get("baselines", {})}
        for name, run in runs.items():
            if run:
                points.setdefault(name, []).extend(run.get("steps") or [run["figure"]])
    points = {name: [s for s in steps if s.get("p99_ms") is not None] for name, steps in points.items()}
    if not any(points.values()):
        return False
    colours = {"pricefeed": "tab:blue", "streams": "tab:purple", "ceiling": "tab:green", "naive": "tab:red"}
    fig, ax = plt.subplots(figsize=(8, 5))
    for name in SYSTEM_ORDER:
        steps = sorted(points.get(name, []), key=lambda s: s["deliveries_per_s"])
        if not steps:
            continue
        x = [s["deliveries_per_s"] for s in steps]
        ax.plot(x, [s["p99_ms"] for s in steps], "o-", color=colours[name], label=f"{name} p99")
        ax.plot(x, [s["p50_ms"] for s in steps], "s--", color=colours[name], alpha=0.6, label=f"{name} p50")
    limit = results.get("profile", {}).get("p99_limit_ms")
    if limit:
        ax.axhline(limit, color="grey", linestyle=":", label=f"p99 limit {limit:g} ms")
    clients = results.get("profile", {}).get("fanout_clients")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("delivered price updates per second (all clients)")
    ax.set_ylabel("end-to-end latency, ms (publish_time has 1 ms resolution)")
    ax.set_title(f"pricefeed bench: latency vs delivered load ({clients} clients, server on one core)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
