"""Load generation and measurement: wrk (with bench/report.lua) and the server's memory.

`drive()` runs wrk against one URL while a thread samples the resident memory of the whole
server process tree (gunicorn master + uvicorn worker, VmRSS from /proc) and returns one Run.
"""

import json
import math
import os
import resource
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

LUA = Path(__file__).with_name("report.lua")
WRK = shutil.which("wrk") or "/usr/bin/wrk"


@dataclass
class Run:
    """One wrk run: throughput, latency percentiles (ms), errors and the server's peak RSS."""

    scenario: str
    connections: int
    requests: int
    seconds: float
    p50: float
    p95: float
    p99: float
    errors: int
    error_detail: dict[str, int]
    peak_mb: float
    response_kb: float = 0.0  # average bytes on the wire per response (headers included)
    hello_rps: float | None = None  # the hello measured just before this run
    hello_ratio: float | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def raise_open_files_limit() -> int:
    """1,000 client sockets plus 1,000 server sockets need more than the usual 1,024 fds;
    wrk and gunicorn are started from here, so they inherit the raised limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65_536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def tree_pids(root: int) -> list[int]:
    """The process and all its descendants, from /proc/<pid>/task/*/children."""
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                todo.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
    return pids


def rss_mb(root: int) -> float:
    total_kb = 0
    for pid in tree_pids(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
                break
    return total_kb / 1024


class MemorySampler:
    """Peak RSS of a process tree, sampled every 20 ms while the `with` block runs."""

    def __init__(self, root: int, interval: float = 0.02) -> None:
        self.root, self.interval = root, interval
        self.before = self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.root))
            self._stop.wait(self.interval)

    def __enter__(self) -> "MemorySampler":
        self.before = self.peak = rss_mb(self.root)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb(self.root))

    @property
    def growth(self) -> float:
        return self.peak - self.before


def drive(
    scenario: str,
    url: str,
    server_pid: int,
    *,
    connections: int,
    seconds: float,
    headers: dict[str, str],
    method: str = "GET",
    body: str | None = None,
    timeout: float = 10.0,
) -> Run:
    """Run wrk against `url` while sampling the memory of the server tree rooted at `server_pid`."""
    env = {
        **os.environ,
        "BENCH_METHOD": method,
        "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in headers.items()),
    }
    if body is not None:
        env["BENCH_BODY"] = body
    # wrk reads whole seconds only ("-d24.5s" is a usage error)
    command = [WRK, f"-t{min(2, connections)}", f"-c{connections}", f"-d{math.ceil(seconds)}s"]
    command += [f"--timeout={math.ceil(timeout)}s", "-s", str(LUA), url]
    with MemorySampler(server_pid) as memory:
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith("BENCH ")]
    if not lines:
        raise RuntimeError(
            f"wrk gave no summary (exit {result.returncode}):\n{result.stdout}{result.stderr}"
        )
    summary = json.loads(lines[0].removeprefix("BENCH "))
    detail = {k: summary[k] for k in ("connect", "read", "write", "status", "timeout")}
    return Run(
        scenario=scenario,
        connections=connections,
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        p50=summary["p50_us"] / 1000,
        p95=summary["p95_us"] / 1000,
        p99=summary["p99_us"] / 1000,
        errors=sum(detail.values()),
        error_detail={k: v for k, v in detail.items() if v},
        peak_mb=memory.peak,
        response_kb=summary["bytes"] / summary["requests"] / 1000 if summary["requests"] else 0.0,
    )
