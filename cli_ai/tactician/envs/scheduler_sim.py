"""The scheduler's simulated cluster (SchedulerEnv's physics).

The simulated cluster
---------------------
N replicas, each with a relative `speed` (2.0 = twice as fast as 1.0), a
`max_batch_size` and its own FIFO queue. Requests arrive from a Poisson process
of `arrival.rate` requests/s, or a bursty one (a two-state Markov-modulated
Poisson process: calm periods at `rate`, bursts at `rate * burst_multiplier`,
with exponentially distributed durations of mean `mean_calm_s` and
`mean_burst_s`). Each request has a prompt length and an output length drawn
from `prompt_tokens` and `output_tokens` (constant, uniform or lognormal,
clipped to [min, max]).

Service model (documented, deliberately simple, event-driven and exact):
- a request's work, in seconds on a speed-1 replica serving it alone, is
  `prompt_tokens * prefill_ms_per_token / 1000 + output_tokens * decode_ms_per_token / 1000`
  (prefill cost proportional to the prompt, decode cost per generated token);
- a replica serves up to `max_batch_size` requests at once (continuous
  batching); with b requests in the batch each progresses at
  `speed / (1 + batch_slowdown * (b - 1))` work-seconds per second, so the
  per-token time grows mildly with the batch while the replica's total rate
  grows sub-linearly (processor sharing inside the batch; a request's
  prefill is part of its work and shares the batch like its decode, a
  simplification of chunked prefill);
- when the batch is full, new requests wait in the replica's queue and join the
  batch, in order, as members finish.
A request's latency is its completion time minus its arrival time.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Sequence

import numpy as np

from cli_ai.tactician.envs.scheduler_config import SchedulerConfig


class Replica:
    """One replica: a batch served by processor sharing, and a FIFO queue.

    Every batch member progresses at the same rate, so the replica keeps one
    'virtual work' clock V; a member admitted at V0 with work w finishes when V
    reaches V0 + w (a heap ordered by that finishing point)."""

    __slots__ = ("speed", "max_batch", "slowdown", "V", "t", "heap", "queue", "queued_work", "sum_finish",
                 "area", "lat_ema", "completed")

    def __init__(self, speed: float, max_batch: int, slowdown: float):
        self.speed = speed
        self.max_batch = max_batch
        self.slowdown = slowdown
        self.V = 0.0
        self.t = 0.0
        self.heap: list[tuple[float, int]] = []
        self.queue: deque[int] = deque()
        self.queued_work = 0.0
        self.sum_finish = 0.0
        self.area = 0.0  # integral of the number of requests here over time
        self.lat_ema = 0.0
        self.completed = 0

    def rate(self, b: int) -> float:
        return self.speed / (1.0 + self.slowdown * (b - 1))

    def outstanding(self) -> int:
        return len(self.heap) + len(self.queue)

    def remaining_work(self) -> float:
        return self.sum_finish - len(self.heap) * self.V + self.queued_work

    def drain_s(self) -> float:
        b = len(self.heap)
        if b == 0:
            return 0.0
        return self.remaining_work() / (self.rate(b) * b)

    def admit(self, rid: int, work: float) -> None:
        if len(self.heap) < self.max_batch:
            f = self.V + work
            heapq.heappush(self.heap, (f, rid))
            self.sum_finish += f
        else:
            self.queue.append(rid)
            self.queued_work += work

    def advance(self, t_end: float, work: np.ndarray, done: list[tuple[int, float]]) -> None:
        """Serve until t_end; finished (request, time) pairs go to `done`."""
        heap = self.heap
        while heap:
            b = len(heap)
            r = self.speed / (1.0 + self.slowdown * (b - 1))
            f, rid = heap[0]
            t_done = self.t + (f - self.V) / r
            if t_done > t_end:
                break
            heapq.heappop(heap)
            self.area += (b + len(self.queue)) * (t_done - self.t)
            self.V = f
            self.t = t_done
            self.sum_finish -= f
            done.append((rid, t_done))
            if self.queue:
                nxt = self.queue.popleft()
                w = work[nxt]
                self.queued_work -= w
                nf = self.V + w
                heapq.heappush(heap, (nf, nxt))
                self.sum_finish += nf
        if heap:
            b = len(heap)
            self.V += (t_end - self.t) * self.speed / (1.0 + self.slowdown * (b - 1))
        if t_end > self.t:
            n = len(heap) + len(self.queue)
            if n:
                self.area += n * (t_end - self.t)
            self.t = t_end
        if not heap and not self.queue:
            self.queued_work = 0.0
            self.sum_finish = 0.0


def generate_traffic(cfg: SchedulerConfig, rng: np.random.Generator, n: int | None = None) -> dict[str, np.ndarray]:
    """Arrival times (n + 1: the last closes the final step), prompt and output
    lengths and work of one episode's requests."""
    n = cfg.episode_requests if n is None else n
    a = cfg.arrival
    m = n + 1
    if a.process == "poisson":
        arrivals = np.cumsum(rng.exponential(1.0 / a.rate, size=m))
    else:
        arrivals = np.empty(m)
        t = 0.0
        bursting = bool(rng.random() < a.mean_burst_s / (a.mean_burst_s + a.mean_calm_s))
        switch = t + rng.exponential(a.mean_burst_s if bursting else a.mean_calm_s)
        i = 0
        while i < m:
            rate = a.rate * (a.burst_multiplier if bursting else 1.0)
            nxt = t + rng.exponential(1.0 / rate)
            if nxt > switch:  # memoryless: restart the draw at the switch with the new rate
                t = switch
                bursting = not bursting
                switch = t + rng.exponential(a.mean_burst_s if bursting else a.mean_calm_s)
                continue
            t = nxt
            arrivals[i] = t
            i += 1
    prompt = cfg.prompt_tokens.sample(rng, n)
    output = cfg.output_tokens.sample(rng, n)
    work = cfg.work_s(prompt.astype(float), output.astype(float))
    return {"arrival": arrivals, "prompt": prompt, "output": output, "work": np.asarray(work, dtype=float)}


def variance(xs: Sequence[float]) -> float:
    """Population variance of a short list (faster than numpy for a few replicas)."""
    n = len(xs)
    if n == 0:
        return 0.0
    m = sum(xs) / n
    return sum((x - m) * (x - m) for x in xs) / n


def sorted_percentile(sorted_xs: Sequence[float], q: float) -> float:
    """numpy's default (linear) percentile of an already sorted sequence."""
    pos = (len(sorted_xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def latency_summary(latencies_s: np.ndarray, elapsed_s: float) -> dict[str, float]:
    """mean/p50/p95/p99 latency (ms) and throughput (requests/s) of finished requests."""
    lat = np.asarray(latencies_s, dtype=float)
    if lat.size == 0:
        return {"mean_latency_ms": 0.0, "p50_latency_ms": 0.0, "p95_latency_ms": 0.0, "p99_latency_ms": 0.0,
                "throughput": 0.0, "completed": 0}
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    return {
        "mean_latency_ms": float(lat.mean() * 1000.0),
        "p50_latency_ms": float(p50 * 1000.0),
        "p95_latency_ms": float(p95 * 1000.0),
        "p99_latency_ms": float(p99 * 1000.0),
        "throughput": float(lat.size / elapsed_s) if elapsed_s > 0 else 0.0,
        "completed": int(lat.size),
    }
