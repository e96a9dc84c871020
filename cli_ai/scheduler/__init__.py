"""The request-scheduling target: compare routing policies (baselines and a
trained PPO) on the same seeded traffic of SchedulerEnv.

`compare_schedulers` lives in `cli_ai.scheduler.compare`, the Typer sub-app in
`cli_ai.scheduler.cli`; importing this package loads neither torch nor
matplotlib."""
