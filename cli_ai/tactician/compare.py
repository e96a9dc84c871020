"""The compare core: policies side by side on the same seeded episodes.

Episode ``i`` of every policy is ``env.reset(seed=seeds[i])``. The simulated
targets draw an episode's traffic at reset (arrivals, task or prompt sizes),
before any decision, so with common random numbers the differences between
policies come from the policies alone. The autoscaling comparison
(`cli-ai autoscale compare`) and the routing one (`cli-ai scheduler compare`)
both roll out through here; what each summarises about an episode is theirs.

A policy is either a toolkit policy (``reset()``, ``act(obs, greedy=True)``:
SARSA, the DQN, the reactive baselines) or anything with SB3's ``predict``
(PPO, the routing baselines).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from cli_ai.tactician.episodes import EpisodeStats, EpisodeSummary, EpisodeTracker

StepHook = Callable[[Mapping[str, Any]], None]


def greedy_action(policy: Any, obs: Any, state: Any, episode_start: bool) -> tuple[int, Any]:
    """The policy's deterministic choice (and its recurrent state, if any)."""
    if hasattr(policy, "act"):
        return int(policy.act(obs, greedy=True)), state
    action, state = policy.predict(obs, state=state, episode_start=np.array([episode_start]), deterministic=True)
    return int(np.asarray(action).reshape(-1)[0]), state


def rollout(env, policy: Any, *, seed: int | None, stats: Callable[[], EpisodeStats] | None = None,
            on_step: StepHook | None = None) -> EpisodeSummary:
    """One greedy episode of `policy` from ``env.reset(seed=seed)``."""
    obs, _ = env.reset(seed=seed)
    if hasattr(policy, "reset"):
        policy.reset()
    tracker = EpisodeTracker(stats=stats)
    state, start = None, True
    while True:
        action, state = greedy_action(policy, obs, state, start)
        start = False
        obs, reward, terminated, truncated, info = env.step(action)
        closed = tracker.record(action, reward, terminated, truncated, info)
        if on_step is not None:
            on_step(info)
        if closed is not None:
            return closed


def run_episodes(env, policy: Any, seeds: Sequence[int | None], *,
                 summarize: Callable[[Any, EpisodeSummary, int, int], dict[str, Any]],
                 stats: Callable[[], EpisodeStats] | None = None,
                 on_step: Callable[[int, int, Mapping[str, Any]], None] | None = None,
                 on_episode: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """`policy` over the seeded episodes, in order; `summarize(env, episode,
    index, seed)` turns each into its summary (called right after the episode
    ended, while the env still holds it). `on_step(index, seed, info)` sees
    every step."""
    summaries = []
    for i, seed in enumerate(seeds):
        hook = None if on_step is None else (lambda info, i=i, seed=seed: on_step(i, seed, info))
        seed = None if seed is None else int(seed)
        episode = rollout(env, policy, seed=seed, stats=stats, on_step=hook)
        summary = summarize(env, episode, i, seed)
        summaries.append(summary)
        if on_episode is not None:
            on_episode(summary)
    return summaries
