"""`cli-ai autoscale …`: train, test, compare and plot autoscaling policies (seed 002).

`cli.py` holds the Typer sub-app (`autoscale_app`); the logic lives in the sibling
modules (`train`, `evaluate`, `compare`, `plot`, `rundir`, `episodes`, `settings`) and
returns plain data; `cli_ai.console.autoscale` renders it.
"""
