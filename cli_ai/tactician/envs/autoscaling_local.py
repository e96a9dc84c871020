"""A real platform: worker processes on this machine running CPU-bound tasks.

`LocalPlatform` honours the same `Platform` contract as the simulation, with wall-clock
time. ``time_scale`` wall seconds stand for one workload second, so a 240 s workload runs
in 24 s at ``time_scale=0.1``; every time the platform reports (arrivals, response times,
deadlines, worker-seconds) is converted back to workload seconds, so a policy trained in
simulation sees observations of the same scale.

How it maps the contract onto the machine:

- a worker is one process (``python -m cli_ai.tactician.envs.autoscaling_local``, so it
  never re-imports the caller's main module) talking to this process over its stdin and
  stdout pipes; scaling up starts processes, and a new worker announces itself ready
  after its real start-up plus the workload's emulated ``cold_start``;
- this process holds the FIFO queue (like the OpenFaaS queue-worker in front of a
  function) and sends a task to an idle ready worker; tasks still queued at their
  deadline expire; a full queue rejects arrivals;
- a task of size ``s`` is ``s * time_scale`` seconds of CPU work *measured on an idle
  core at start*: a fixed number of iterations of an integer loop, so its real duration
  grows when the machine is busy, as it would on a shared node;
- scaling down stops cold-starting workers, then idle ones, then drains busy ones (they
  finish their task and exit);
- the worker count is capped at the number of CPU cores (one CPU-bound process each), and
  one worker runs one task at a time (``concurrency`` 1).

`close()` stops every process it started (a stop message, then terminate and kill for
stragglers) and joins them; `pids()` lists the live ones.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
import weakref
from collections import deque
from typing import Any, Sequence

from cli_ai.tactician.envs.autoscaling_platform import (
    DRAINING,
    GONE,
    READY,
    STARTING,
    Outcomes,
    Platform,
    PlatformStats,
)

_CHUNK = 20_000


def _burn(iterations: int) -> int:
    """CPU-bound work: an integer linear congruential loop."""
    x = 12345
    for _ in range(iterations):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return x


_CALIBRATED: float | None = None


def calibrate(seconds: float = 0.05, rounds: int = 3) -> float:
    """Iterations of `_burn` per second on one core, the best of a few short rounds
    (so a momentarily busy machine does not shrink the tasks); measured once."""
    global _CALIBRATED
    if _CALIBRATED is None:
        best = 0.0
        for _ in range(rounds):
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                _burn(_CHUNK)
                n += _CHUNK
            best = max(best, n / (time.perf_counter() - start))
        _CALIBRATED = best
    return _CALIBRATED


def _worker_main(cold_start_wall: float) -> None:
    """A worker process: announce readiness, then run tasks until told to stop.

    Protocol, one line each way: stdin gets ``T <task id> <iterations>`` or ``Q`` (quit);
    stdout answers ``R <monotonic time>`` once ready and ``D <task id> <start> <end>``
    per task. EOF on stdin (the platform went away) also stops the worker."""
    out = sys.stdout
    try:
        if cold_start_wall > 0:
            time.sleep(cold_start_wall)
        out.write(f"R {time.monotonic()!r}\n")
        out.flush()
        for line in sys.stdin:
            parts = line.split()
            if not parts or parts[0] != "T":
                break
            tid, iterations = int(parts[1]), int(parts[2])
            started = time.monotonic()
            _burn(iterations)
            out.write(f"D {tid} {started!r} {time.monotonic()!r}\n")
            out.flush()
    except (BrokenPipeError, KeyboardInterrupt, ValueError):
        pass


class _Worker:
    __slots__ = ("process", "state", "task", "buffer")

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.state = STARTING
        self.task: int | None = None
        self.buffer = b""

    @property
    def fd(self) -> int:
        return self.process.stdout.fileno()

    def send(self, line: str) -> bool:
        try:
            self.process.stdin.write(line.encode())
            self.process.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False


def _stop_processes(workers: list[_Worker], timeout: float = 3.0) -> None:
    """Ask each worker to quit (after its current task), then terminate and kill stragglers."""
    for w in workers:
        w.send("Q\n")
        try:
            w.process.stdin.close()
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + timeout
    for w in workers:
        try:
            w.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for w in workers:
        if w.process.poll() is None:
            w.process.terminate()
            try:
                w.process.wait(1.0)
            except subprocess.TimeoutExpired:
                w.process.kill()
                w.process.wait(1.0)
        try:
            w.process.stdout.close()
        except (OSError, ValueError):
            pass


class LocalPlatform(Platform):
    clock = "wall"

    def __init__(
        self,
        *,
        cold_start: float = 4.0,
        queue_capacity: int = 400,
        max_replicas: int | None = None,
        time_scale: float = 1.0,
        start_timeout: float = 30.0,
        cores: int | None = None,
    ):
        if time_scale <= 0:
            raise ValueError("time_scale must be above 0")
        self.cores = cores or os.cpu_count() or 1
        self.max_replicas = self.cores if max_replicas is None else max(1, min(int(max_replicas), self.cores))
        self.cold_start = float(cold_start)
        self.concurrency = 1
        self.queue_capacity = int(queue_capacity)
        self.time_scale = float(time_scale)
        self.start_timeout = float(start_timeout)
        self.iterations_per_second = calibrate()
        self._workers: dict[int, _Worker] = {}
        self._next_wid = 0
        self._all: list[_Worker] = []  # every worker started, for the finalizer
        self._finalizer = weakref.finalize(self, _stop_processes, [])
        self._started = False
        self._reset_counters()

    # ------------------------------------------------------------------ time
    def _to_wall(self, t: float) -> float:
        return self._t0 + t * self.time_scale

    def _to_sim(self, wall: float) -> float:
        return (wall - self._t0) / self.time_scale

    # ------------------------------------------------------------------ contract
    def reset(self, workers: int) -> None:
        self._stop(list(self._workers.values()))
        self._workers.clear()
        self._reset_counters()
        n = max(0, min(int(workers), self.max_replicas))
        for _ in range(n):
            self._spawn(cold_start_wall=0.0)
        deadline = time.monotonic() + self.start_timeout
        while any(w.state == STARTING for w in self._workers.values()):
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"local workers did not start within {self.start_timeout:g} s")
            self._receive(timeout=left)
        self._t0 = time.monotonic()
        self._ws_t = self._t0
        self._started = True

    def scale_to(self, replicas: int) -> int:
        n = max(0, min(int(replicas), self.max_replicas))
        current = self._count(READY) + self._count(STARTING)
        if n == current:
            return n
        self._integrate(time.monotonic())
        if n > current:
            for _ in range(n - current):
                self._spawn(cold_start_wall=self.cold_start * self.time_scale)
            return n
        remove = current - n
        ordered = sorted(self._workers.items(), key=lambda kv: -kv[0])
        for wid, w in ordered:  # cold starts, newest first
            if remove and w.state == STARTING:
                self._retire(wid)
                remove -= 1
        for wid, w in sorted(self._workers.items()):
            if remove and w.state == READY and w.task is None:
                self._retire(wid)
                remove -= 1
        for wid, w in sorted(self._workers.items()):
            if remove and w.state == READY:
                w.state = DRAINING
                w.send("Q\n")  # read after its current task
                remove -= 1
        return n

    def submit(self, arrival: Sequence[float], size: Sequence[float], deadline: Sequence[float]) -> None:
        arrival = list(arrival.tolist() if hasattr(arrival, "tolist") else arrival)
        size = list(size.tolist() if hasattr(size, "tolist") else size)
        deadline = list(deadline.tolist() if hasattr(deadline, "tolist") else deadline)
        self._pending.extend(zip(arrival, size, deadline))

    def advance(self, until: float) -> None:
        if not self._started:
            raise RuntimeError("call reset() before advance()")
        end = self._to_wall(until)
        while True:
            now = time.monotonic()
            self._release(now)
            self._expire(now)
            self._dispatch()
            if now >= end:
                break
            wake = end
            if self._pending:
                wake = min(wake, self._to_wall(self._pending[0][0]))
            if self._queue:
                wake = min(wake, self._to_wall(self._queue[0][2]))
            self._receive(timeout=max(0.0, wake - time.monotonic()))
        self._receive(timeout=0.0)
        self._dispatch()
        self._integrate(time.monotonic())
        self.now = until

    def poll(self) -> Outcomes:
        self._receive(timeout=0.0)
        out, self._out = self._out, Outcomes()
        return out

    def stats(self) -> PlatformStats:
        wall = time.monotonic()
        live = sum(1 for w in self._workers.values() if w.state != GONE)
        return PlatformStats(
            now=self.now,
            queued=len(self._queue),
            running=len(self._running),
            ready=self._count(READY),
            starting=self._count(STARTING),
            draining=self._count(DRAINING),
            arrived=self._arrived,
            completed=self._completed,
            late=self._late,
            expired=self._expired,
            rejected=self._rejected,
            worker_seconds=self._ws + live * (wall - self._ws_t) / self.time_scale,
        )

    def close(self) -> None:
        self._stop(list(self._workers.values()))
        self._workers.clear()
        self._started = False

    def pids(self) -> list[int]:
        """Process ids of the worker processes that are still alive."""
        return [w.process.pid for w in self._workers.values() if w.process.poll() is None]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "cores": self.cores, "time_scale": self.time_scale,
                "cold_start": self.cold_start, "queue_capacity": self.queue_capacity,
                "iterations_per_second": round(self.iterations_per_second)}

    # ------------------------------------------------------------------ internals
    def _reset_counters(self) -> None:
        self.now = 0.0
        self._t0 = time.monotonic()
        self._ws = 0.0
        self._ws_t = self._t0
        self._pending: deque[tuple[float, float, float]] = deque()
        self._queue: deque[tuple[float, float, float]] = deque()
        self._tasks: dict[int, tuple[float, float]] = {}  # tid -> (arrival, deadline) in workload seconds
        self._running: set[int] = set()
        self._next_tid = 0
        self._arrived = self._completed = self._late = self._expired = self._rejected = 0
        self._out = Outcomes()

    def _count(self, state: int) -> int:
        return sum(1 for w in self._workers.values() if w.state == state)

    def _integrate(self, wall: float) -> None:
        live = sum(1 for w in self._workers.values() if w.state != GONE)
        self._ws += live * (wall - self._ws_t) / self.time_scale
        self._ws_t = wall

    def _spawn(self, *, cold_start_wall: float) -> None:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli_ai.tactician.envs.autoscaling_local", "--worker", repr(cold_start_wall)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        os.set_blocking(process.stdout.fileno(), False)
        wid = self._next_wid
        self._next_wid += 1
        self._workers[wid] = _Worker(process)
        self._all.append(self._workers[wid])
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _stop_processes, list(self._all))

    def _retire(self, wid: int) -> None:
        """Stop a worker that runs no task (starting or idle) right away."""
        w = self._workers.pop(wid)
        w.state = GONE
        _stop_processes([w], timeout=0.5)

    def _stop(self, workers: list[_Worker]) -> None:
        if workers:
            _stop_processes(workers)
        for w in workers:
            w.state = GONE

    def _release(self, wall: float) -> None:
        """Move tasks whose arrival time has come from pending into the queue."""
        pending = self._pending
        while pending and self._to_wall(pending[0][0]) <= wall:
            arrival, size, deadline = pending.popleft()
            self._arrived += 1
            if len(self._queue) >= self.queue_capacity:
                self._rejected += 1
                self._out.dropped_time.append(arrival)
            else:
                self._queue.append((arrival, size, deadline))

    def _expire(self, wall: float) -> None:
        t = self._to_sim(wall)
        if not self._queue:
            return
        keep = deque()
        for item in self._queue:
            if item[2] <= t:
                self._expired += 1
                self._out.dropped_time.append(item[2])
            else:
                keep.append(item)
        self._queue = keep

    def _dispatch(self) -> None:
        if not self._queue:
            return
        for w in self._workers.values():
            if not self._queue:
                break
            if w.state == READY and w.task is None:
                arrival, size, deadline = self._queue.popleft()
                tid = self._next_tid
                self._next_tid += 1
                iterations = max(1, int(size * self.time_scale * self.iterations_per_second))
                if not w.send(f"T {tid} {iterations}\n"):
                    self._queue.appendleft((arrival, size, deadline))
                    continue
                w.task = tid
                self._tasks[tid] = (arrival, deadline)
                self._running.add(tid)

    def _receive(self, *, timeout: float) -> None:
        """Wait up to `timeout` for worker messages and handle all that arrived."""
        live = {w.fd: (wid, w) for wid, w in self._workers.items() if w.state != GONE}
        if not live:
            if timeout > 0:
                time.sleep(timeout)
            return
        readable, _, _ = select.select(list(live), [], [], timeout)
        for fd in readable:
            wid, w = live[fd]
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:  # EOF: the process exited
                self._worker_gone(wid, w)
                continue
            w.buffer += chunk
            *lines, w.buffer = w.buffer.split(b"\n")
            for line in lines:
                if line:
                    self._handle(wid, w, line.decode().split())

    def _handle(self, wid: int, w: _Worker, msg) -> None:
        kind = msg[0]
        if kind == "R":
            if w.state == STARTING:
                w.state = READY
        elif kind == "D":
            tid, finished = int(msg[1]), float(msg[3])
            w.task = None
            self._running.discard(tid)
            arrival, deadline = self._tasks.pop(tid)
            t = self._to_sim(finished)
            ok = t <= deadline
            self._out.done_time.append(t)
            self._out.response.append(t - arrival)
            self._out.on_time.append(ok)
            if ok:
                self._completed += 1
            else:
                self._late += 1
            if w.state == DRAINING:
                self._worker_gone(wid, w)

    def _worker_gone(self, wid: int, w: _Worker) -> None:
        """A worker exited (drained, or died): account for it and reap the process."""
        if w.task is not None:  # died mid-task: the task is lost, a miss
            self._running.discard(w.task)
            arrival, deadline = self._tasks.pop(w.task, (0.0, 0.0))
            self._expired += 1
            self._out.dropped_time.append(self._to_sim(time.monotonic()))
            w.task = None
        self._integrate(time.monotonic())
        w.state = GONE
        self._workers.pop(wid, None)
        _stop_processes([w], timeout=2.0)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        _worker_main(float(sys.argv[2]))
    else:
        sys.exit("usage: python -m cli_ai.tactician.envs.autoscaling_local --worker COLD_START_SECONDS")
