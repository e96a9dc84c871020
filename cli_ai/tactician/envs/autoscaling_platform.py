"""Where the autoscaling env's tasks run: the `Platform` interface and its simulation.

A platform is a pool of workers (function replicas) in front of one FIFO queue:

- ``reset(workers)``: a new episode at time 0 with ``workers`` warm workers, nothing queued;
- ``scale_to(n)``: ask for ``n`` workers (replicas); new ones are usable only after a
  cold start, removed ones finish the tasks they run (drain) and then leave;
- ``submit(arrival, size, deadline)``: tasks that arrive at the given times (seconds from
  the episode start, not before ``now``); ``size`` is seconds of work on one worker slot,
  ``deadline`` the absolute time by which the task must complete;
- ``advance(until)``: run until time ``until``;
- ``poll()``: what finished since the last poll (`Outcomes`);
- ``stats()``: the pool and queue right now, and counters since the reset (`PlatformStats`);
- ``close()``: release everything (processes, connections).

A task either completes on time, completes late, expires in the queue (its deadline
passed before a worker took it), or is rejected because the queue is full; the last
three are QoS misses. At every moment ``arrived = completed + missed + queued + running``.

`SimulatedPlatform` is a discrete-event simulation on a heap of events (worker ready,
task complete), with arrivals as a sorted stream merged into it; time is simulated
seconds. `cli_ai.tactician.envs.autoscaling_local.LocalPlatform` runs the same contract
with real worker processes and wall-clock time; docs/autoscaling.md describes how a
Kubernetes/OpenFaaS backend maps onto it.

This module imports nothing heavy: worker processes of the local platform import it.
"""

from __future__ import annotations

import heapq
import itertools
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from typing import Sequence

INF = float("inf")

# worker states
STARTING, READY, DRAINING, GONE = 0, 1, 2, 3
# event kinds; events are (time, seq, kind, worker, arrival, deadline), ordered by time then seq
_COMPLETE, _READY = 0, 1


@dataclass
class Outcomes:
    """Tasks that finished since the last poll.

    ``done_time``/``response``/``on_time`` describe completed tasks (on time or late),
    ``response`` being completion minus arrival; ``dropped_time`` holds the times at
    which tasks expired in the queue or were rejected."""

    done_time: list[float] = field(default_factory=list)
    response: list[float] = field(default_factory=list)
    on_time: list[bool] = field(default_factory=list)
    dropped_time: list[float] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return sum(self.on_time)

    @property
    def missed(self) -> int:
        return len(self.on_time) - sum(self.on_time) + len(self.dropped_time)


@dataclass(frozen=True)
class PlatformStats:
    now: float
    queued: int
    running: int
    ready: int
    starting: int
    draining: int
    arrived: int
    completed: int  # on time
    late: int
    expired: int
    rejected: int
    worker_seconds: float  # integral of live workers (starting, ready, draining) over time

    @property
    def workers(self) -> int:
        """Replicas the platform is asked to run: ready plus cold-starting."""
        return self.ready + self.starting

    @property
    def missed(self) -> int:
        return self.late + self.expired + self.rejected


class Platform(ABC):
    """The contract every backend honours (simulated, local processes, a cluster)."""

    #: the most workers this backend can run (None: no limit of its own)
    max_replicas: int | None = None
    #: "simulated" or "wall": what the time arguments mean
    clock: str = "simulated"

    @abstractmethod
    def reset(self, workers: int) -> None: ...

    @abstractmethod
    def scale_to(self, replicas: int) -> int:
        """Ask for `replicas` workers; returns the number actually requested."""

    @abstractmethod
    def submit(self, arrival: Sequence[float], size: Sequence[float], deadline: Sequence[float]) -> None: ...

    @abstractmethod
    def advance(self, until: float) -> None: ...

    @abstractmethod
    def poll(self) -> Outcomes: ...

    @abstractmethod
    def stats(self) -> PlatformStats: ...

    def close(self) -> None:
        """Release resources; the simulation holds none."""

    def describe(self) -> dict:
        return {"platform": type(self).__name__, "clock": self.clock, "max_replicas": self.max_replicas}


class SimulatedPlatform(Platform):
    """Discrete-event simulation of a serverless function platform.

    Each worker has ``concurrency`` slots; a task occupies one slot for ``size`` seconds.
    A scaled-up worker takes tasks after ``cold_start`` seconds. Scaling down cancels
    cold-starting workers first (newest first), then removes idle workers, then drains
    busy ones (they take no new task and leave when their tasks are done). Tasks wait in
    one FIFO queue of ``queue_capacity``; a task whose deadline passes while it waits is
    dropped (expired) at its deadline; a task that finishes after its deadline is late.
    """

    clock = "simulated"

    def __init__(self, *, cold_start: float = 4.0, concurrency: int = 1, queue_capacity: int = 400,
                 max_replicas: int | None = None):
        if cold_start < 0:
            raise ValueError("cold_start must be >= 0")
        if concurrency < 1 or queue_capacity < 1:
            raise ValueError("concurrency and queue_capacity must be >= 1")
        self.cold_start = float(cold_start)
        self.concurrency = int(concurrency)
        self.queue_capacity = int(queue_capacity)
        self.max_replicas = max_replicas
        self.reset(0)

    # ------------------------------------------------------------------ contract
    def reset(self, workers: int) -> None:
        self.now = 0.0
        self._heap: list[tuple] = []
        self._seq = itertools.count()
        self._queue: deque[tuple[float, float, float]] = deque()
        self._unordered = False  # a queued deadline is earlier than one ahead of it
        self._arr: list[float] = []
        self._size: list[float] = []
        self._dl: list[float] = []
        self._next = 0
        self._state: list[int] = []
        self._busy: list[int] = []
        self._free: list[int] = []
        self._ready = self._starting = self._draining = 0
        self._running = 0
        self._arrived = self._completed = self._late = self._expired = self._rejected = 0
        self._ws = 0.0
        self._ws_t = 0.0
        self._out = Outcomes()
        for _ in range(max(0, int(workers))):
            wid = self._new_worker(READY)
            self._free.extend([wid] * self.concurrency)

    def scale_to(self, replicas: int) -> int:
        n = max(0, int(replicas))
        if self.max_replicas is not None:
            n = min(n, self.max_replicas)
        current = self._ready + self._starting
        if n == current:
            return n
        self._integrate(self.now)
        if n > current:
            for _ in range(n - current):
                if self.cold_start <= 0:
                    self._make_ready(self._new_worker(READY), count=False)
                else:
                    wid = self._new_worker(STARTING)
                    heapq.heappush(self._heap, (self.now + self.cold_start, next(self._seq), _READY, wid, 0.0, 0.0))
            return n
        remove = current - n
        state, busy = self._state, self._busy
        for wid in range(len(state) - 1, -1, -1):  # cancel cold starts, newest first
            if remove and state[wid] == STARTING:
                state[wid] = GONE
                self._starting -= 1
                remove -= 1
        for wid in range(len(state)):  # idle workers
            if remove and state[wid] == READY and busy[wid] == 0:
                state[wid] = GONE
                self._ready -= 1
                remove -= 1
        for wid in range(len(state)):  # busy ones drain
            if remove and state[wid] == READY:
                state[wid] = DRAINING
                self._ready -= 1
                self._draining += 1
                remove -= 1
        self._free = [w for w in self._free if state[w] == READY]
        return n

    def submit(self, arrival, size, deadline) -> None:
        arrival = arrival.tolist() if hasattr(arrival, "tolist") else list(arrival)
        if arrival and arrival[0] < self.now:
            raise ValueError(f"task arrives at {arrival[0]:.3f}, before the platform time {self.now:.3f}")
        if self._next > 4096 and self._next == len(self._arr):  # all consumed: start afresh
            self._arr, self._size, self._dl, self._next = [], [], [], 0
        self._arr.extend(arrival)
        self._size.extend(size.tolist() if hasattr(size, "tolist") else size)
        self._dl.extend(deadline.tolist() if hasattr(deadline, "tolist") else deadline)

    def advance(self, until: float) -> None:
        if until < self.now:
            raise ValueError("time cannot go backwards")
        heap, queue, free = self._heap, self._queue, self._free
        arr, sizes, dls = self._arr, self._size, self._dl
        out_t, out_rt, out_ok = self._out.done_time, self._out.response, self._out.on_time
        dropped = self._out.dropped_time
        state, busy = self._state, self._busy
        seq = self._seq
        cap = self.queue_capacity
        i, n = self._next, len(arr)
        heappush, heappop = heapq.heappush, heapq.heappop
        while True:
            ta = arr[i] if i < n else INF
            te = heap[0][0] if heap else INF
            if ta < te:
                if ta > until:
                    break
                size, dl = sizes[i], dls[i]
                i += 1
                self._arrived += 1
                if free:
                    wid = free.pop()
                    busy[wid] += 1
                    self._running += 1
                    heappush(heap, (ta + size, next(seq), _COMPLETE, wid, ta, dl))
                elif len(queue) >= cap:
                    self._rejected += 1
                    dropped.append(ta)
                else:
                    if queue and dl < queue[-1][2]:
                        self._unordered = True
                    queue.append((ta, size, dl))
                continue
            if te > until:
                break
            t, _, kind, wid, ta_task, dl = heappop(heap)
            if kind == _COMPLETE:
                self._running -= 1
                busy[wid] -= 1
                out_t.append(t)
                out_rt.append(t - ta_task)
                ok = t <= dl
                out_ok.append(ok)
                if ok:
                    self._completed += 1
                else:
                    self._late += 1
                st = state[wid]
                if st == READY:
                    # take the next live task from the queue, or free the slot
                    while queue:
                        qa, qs, qd = queue.popleft()
                        if qd <= t:
                            self._expired += 1
                            dropped.append(qd)
                            continue
                        busy[wid] += 1
                        self._running += 1
                        heappush(heap, (t + qs, next(seq), _COMPLETE, wid, qa, qd))
                        break
                    else:
                        free.append(wid)
                elif st == DRAINING and busy[wid] == 0:
                    self._integrate(t)
                    state[wid] = GONE
                    self._draining -= 1
            else:  # a cold start finished
                if state[wid] != STARTING:
                    continue  # cancelled
                self.now = t
                self._make_ready(wid, count=True)
        self._next = i
        self._integrate(until)
        self.now = until
        self._purge(until)

    def poll(self) -> Outcomes:
        out, self._out = self._out, Outcomes()
        return out

    def stats(self) -> PlatformStats:
        return PlatformStats(
            now=self.now,
            queued=len(self._queue),
            running=self._running,
            ready=self._ready,
            starting=self._starting,
            draining=self._draining,
            arrived=self._arrived,
            completed=self._completed,
            late=self._late,
            expired=self._expired,
            rejected=self._rejected,
            worker_seconds=self._ws + self._live() * (self.now - self._ws_t),
        )

    def describe(self) -> dict:
        return {**super().describe(), "cold_start": self.cold_start, "concurrency": self.concurrency,
                "queue_capacity": self.queue_capacity}

    # ------------------------------------------------------------------ internals
    def _live(self) -> int:
        return self._ready + self._starting + self._draining

    def _integrate(self, t: float) -> None:
        self._ws += self._live() * (t - self._ws_t)
        self._ws_t = t

    def _new_worker(self, st: int) -> int:
        self._state.append(st)
        self._busy.append(0)
        if st == READY:
            self._ready += 1
        else:
            self._starting += 1
        return len(self._state) - 1

    def _make_ready(self, wid: int, *, count: bool) -> None:
        """A worker becomes usable at self.now: it takes up to `concurrency` queued tasks."""
        if count:
            self._state[wid] = READY
            self._starting -= 1
            self._ready += 1
        t = self.now
        queue, heap = self._queue, self._heap
        slots = self.concurrency
        while slots and queue:
            qa, qs, qd = queue.popleft()
            if qd <= t:
                self._expired += 1
                self._out.dropped_time.append(qd)
                continue
            self._busy[wid] += 1
            self._running += 1
            heapq.heappush(heap, (t + qs, next(self._seq), _COMPLETE, wid, qa, qd))
            slots -= 1
        self._free.extend([wid] * slots)

    def _purge(self, t: float) -> None:
        """Drop queued tasks whose deadline has passed (recorded at their deadline)."""
        queue = self._queue
        dropped = self._out.dropped_time
        while queue and queue[0][2] <= t:
            dropped.append(queue.popleft()[2])
            self._expired += 1
        if self._unordered and queue:
            keep = deque()
            for item in queue:
                if item[2] <= t:
                    dropped.append(item[2])
                    self._expired += 1
                else:
                    keep.append(item)
            self._queue = keep
            self._unordered = any(keep[k][2] > keep[k + 1][2] for k in range(len(keep) - 1))
        elif not queue:
            self._unordered = False
