"""The postgres target (issue 17): a PostgreSQL server's own settings, tuned
with ALTER SYSTEM on a managed private cluster or an attached server,
measured by pgbench. Modules: `catalog` (the safe ranges, data in
catalog.json), `settings` (the spec's block), `server` (the managed cluster),
`backend` (ALTER SYSTEM, journaled originals), `workload` (pgbench),
`session` (one run's server), `exports` (sql, conf), `target` (the Target)."""

from cli_ai.targets.postgres.target import PostgresTarget

__all__ = ["PostgresTarget"]
