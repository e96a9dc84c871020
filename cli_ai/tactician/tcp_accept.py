"""A loopback benchmark whose result really depends on kernel settings.

An accept storm: many clients connect at once to a listener that accepts at a
bounded pace. The kernel holds completed handshakes in the listener's accept
queue, whose length is min(listen backlog, net.core.somaxconn); when it is
full, further SYNs are dropped and each dropped client waits for a SYN
retransmission (1 s, then 3 s, ...). A small somaxconn (or SYN backlog) turns
a sub-second storm into one dominated by retransmission delays, so
`connections_per_second` and the tail latency move with the settings.

The listener runs in a child process so that the client's event loop and the
acceptor never compete for one interpreter lock.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import socket
import time
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class AcceptStormConfig:
    connections: int = 2000
    concurrency: int = 512
    accept_delay_ms: float = 0.2
    backlog: int = 65535
    connect_timeout_s: float = 15.0
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class AcceptStormResult:
    connections_per_second: float
    completed: int
    failed: int
    duration_s: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    slow_connections: int  # took >= 0.9 s: a SYN was retransmitted

    def lines(self) -> list[str]:
        return [f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}" for k, v in asdict(self).items()]


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return sorted_values[lo]
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def _serve(sock: socket.socket, delay_s: float) -> None:
    """Accept, greet with one byte, close; pace accepts by `delay_s`."""
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        try:
            conn.sendall(b"x")
        except OSError:
            pass
        finally:
            conn.close()
        if delay_s > 0:
            time.sleep(delay_s)


async def _client(host: str, port: int, cfg: AcceptStormConfig) -> tuple[list[float], int, float]:
    sem = asyncio.Semaphore(cfg.concurrency)
    latencies: list[float] = []
    failed = 0

    async def one() -> None:
        nonlocal failed
        async with sem:
            t0 = time.perf_counter()
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), cfg.connect_timeout_s)
                await asyncio.wait_for(reader.read(1), cfg.connect_timeout_s)
                writer.close()
                latencies.append((time.perf_counter() - t0) * 1000.0)
            except (OSError, asyncio.TimeoutError):
                failed += 1

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(cfg.connections)))
    return latencies, failed, time.perf_counter() - start


def run_accept_storm(cfg: AcceptStormConfig = AcceptStormConfig()) -> AcceptStormResult:
    """Run one storm against a fresh listener on a free loopback port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((cfg.host, 0))
    listener.listen(cfg.backlog)  # the kernel caps this at net.core.somaxconn
    port = listener.getsockname()[1]
    ctx = multiprocessing.get_context("fork")
    server = ctx.Process(target=_serve, args=(listener, cfg.accept_delay_ms / 1000.0), daemon=True)
    server.start()
    listener.close()  # the child holds it now
    try:
        latencies, failed, duration = asyncio.run(_client(cfg.host, port, cfg))
    finally:
        server.terminate()
        server.join(5)
        if server.is_alive():
            server.kill()
            server.join()
    latencies.sort()
    completed = len(latencies)
    return AcceptStormResult(
        connections_per_second=completed / duration if duration > 0 else 0.0,
        completed=completed,
        failed=failed,
        duration_s=duration,
        latency_p50_ms=percentile(latencies, 0.50),
        latency_p95_ms=percentile(latencies, 0.95),
        latency_p99_ms=percentile(latencies, 0.99),
        latency_max_ms=latencies[-1] if latencies else float("nan"),
        slow_connections=sum(1 for x in latencies if x >= 900.0),
    )


def loopback_is_up() -> bool:
    """A fresh network namespace starts with `lo` down; the storm needs it up."""
    try:
        with socket.create_server(("127.0.0.1", 0)):
            return True
    except OSError:
        return False


def raise_fd_limit(needed: int) -> None:
    """Each concurrent client holds a socket: lift the soft limit if we may."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard != resource.RLIM_INFINITY else want, hard))


if __name__ == "__main__":  # pragma: no cover - manual experiments
    cfg = AcceptStormConfig()
    raise_fd_limit(cfg.concurrency)
    print("\n".join(run_accept_storm(cfg).lines()), "pid", os.getpid())
