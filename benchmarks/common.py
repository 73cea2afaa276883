"""What the harness, the load clients and the baseline servers share: the feeds, the message shape,
process statistics and the latency histogram."""

from __future__ import annotations

import calendar
import os
import random
import socket
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

HIST_SCALE = 100
"""Latency histogram bins per millisecond (0.01 ms bins)."""

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def feed_ids(count: int) -> list[str]:
    """The ids of pricefeed's simulated feeds, so the baselines serve and the clients ask for the same ones."""
    from pricefeed.sources.simulated import simulated_feeds

    return [known.id for known in simulated_feeds(count)]


def subscriptions(ids: list[str], first_client: int, clients: int, per_client: int, seed: int) -> list[list[str]]:
    """Each client's feeds: a deterministic random sample, the same whichever server is measured."""
    rng = random.Random(seed)
    chosen = [rng.sample(ids, min(per_client, len(ids))) for _ in range(first_client + clients)]
    return chosen[first_client:]


def iso_time(publish_time_us: int) -> str:
    """The seed-000 ``publish_time``: ISO 8601 UTC, milliseconds (truncated), ``Z``."""
    seconds, micros = divmod(publish_time_us, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros // 1000:03d}Z"


def parse_iso_time(text: str) -> float:
    """Unix seconds of an ``iso_time`` string."""
    whole, _, frac = text.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return seconds + (int(frac) / 10 ** len(frac) if frac else 0.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process descended from it (a server that runs workers is all of them)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        found = todo.pop()
        tree.append(found)
        todo += children.get(found, [])
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (all their threads)."""
    total = 0.0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            if member == pid:
                return float("nan")
            continue
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its descendants."""
    total = 0
    for member in process_tree(pid):
        try:
            total += int(Path(f"/proc/{member}/statm").read_text().split()[1]) * PAGE_SIZE
        except OSError:
            continue
    return total


TCP_ESTABLISHED = 1
"""``tcpi_state`` of an open connection (linux/tcp_states.h); a reset one is TCP_CLOSE, a half-closed one CLOSE_WAIT."""


def tcp_established(sock: socket.socket) -> bool:
    """Whether the kernel still counts ``sock`` as open; tells a reset from a live connection without reading."""
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == TCP_ESTABLISHED)


COUNTER_NICENESS = 10
"""Niceness of the counting load clients, below the latency sampler's (raising it needs no privilege)."""


def lower_priority(pid: int) -> bool:
    """Run ``pid`` at ``COUNTER_NICENESS``; False if the platform does not allow it."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, COUNTER_NICENESS)
    except (AttributeError, OSError):
        return False
    return True


def pin(pid: int, cpus: set[int] | None) -> bool:
    """Pin a process to ``cpus`` if the machine has them; False if it could not."""
    if not cpus or not hasattr(os, "sched_setaffinity"):
        return False
    try:
        os.sched_setaffinity(pid, cpus)
    except OSError:
        return False
    return True


# -- latency histograms (sparse: bin index -> count, 0.01 ms bins) -------------------------------


def merge_histograms(histograms: Iterable[Mapping[str, int] | Mapping[int, int]]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for hist in histograms:
        for key, count in hist.items():
            merged[int(key)] = merged.get(int(key), 0) + count
    return merged


def percentiles(hist: Mapping[int, int], points: Iterable[float] = (50.0, 99.0, 99.9)) -> dict[str, float | None]:
    """Percentiles in milliseconds (``p50``, ``p99``, ``p99.9``, plus ``max``); None without samples."""
    total = sum(hist.values())
    names = [f"p{p:g}" for p in points]
    if total == 0:
        return {**dict.fromkeys(names), "max": None}
    ordered = sorted(hist.items())
    result: dict[str, float | None] = {}
    for name, point in zip(names, points, strict=True):
        rank = max(1, int(total * point / 100.0 + 0.999999))
        seen = 0
        for key, count in ordered:
            seen += count
            if seen >= rank:
                result[name] = round((key + 0.5) / HIST_SCALE, 3)
                break
    result["max"] = round((ordered[-1][0] + 0.5) / HIST_SCALE, 3)
    return result


def cpu_jiffies() -> dict[int, tuple[int, int]]:
    """Per CPU: (busy, total) jiffies since boot, from /proc/stat (busy includes irq and softirq time)."""
    result: dict[int, tuple[int, int]] = {}
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return result
    for line in lines:
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *values = line.split()
            numbers = [int(v) for v in values[:8]]
            idle = numbers[3] + numbers[4]
            result[int(name[3:])] = (sum(numbers) - idle, sum(numbers))
    return result


def core_busy(before: Mapping[int, tuple[int, int]], after: Mapping[int, tuple[int, int]]) -> dict[int, float]:
    """Share of time each CPU was busy between two ``cpu_jiffies`` readings."""
    busy: dict[int, float] = {}
    for cpu, (b1, t1) in after.items():
        b0, t0 = before.get(cpu, (0, 0))
        busy[cpu] = round((b1 - b0) / (t1 - t0), 3) if t1 > t0 else 0.0
    return busy
