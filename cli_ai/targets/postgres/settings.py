"""The postgres target's settings: the spec's `postgres` block, typed.

    "postgres": {
      "scale": 10,
      "pgbench": {"mode": "tpcb", "clients": 8, "threads": 2, "duration_s": 10, "warmup_s": 2},
      "attach": {"dsn": "host=127.0.0.1 port=5432 dbname=bench user=tuner",
                 "allow_restart": true, "restart_command": ["systemctl", "restart", "postgresql"]},
      "allow_data_loss_on_crash": false
    }

Pure data (standard library only): the checks and the dry run read it
without psycopg or a server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

#: What one pgbench measurement reports; any can be the spec's reward_metric.
PG_METRICS = {
    "tps": "maximize",
    "latency_avg_ms": "minimize",
    "latency_p50_ms": "minimize",
    "latency_p95_ms": "minimize",
    "latency_p99_ms": "minimize",
}
DEFAULT_METRIC = "tps"
#: pgbench's built-in scripts by the name the spec uses, and their flag.
MODES = {"tpcb": [], "simple-update": ["-N"], "select-only": ["-S"], "script": []}
DEFAULT_BINDIR = "/usr/lib/postgresql/15/bin"


@dataclass(frozen=True)
class PgbenchConfig:
    """The benchmark: pgbench's `mode` (tpcb is the write-heavy TPC-B-like
    default, simple-update skips the contended branch/teller updates,
    select-only is read-only, script runs the person's file), with `clients`
    connections on `threads` threads for `duration_s` after `warmup_s` of
    unmeasured load."""

    mode: str = "tpcb"
    script: str | None = None
    clients: int = 8
    threads: int = 2
    duration_s: float = 10.0
    warmup_s: float = 2.0
    timeout_s: float = 120.0

    def flags(self) -> list[str]:
        if self.mode == "script":
            return ["-f", str(self.script)]
        return list(MODES[self.mode])


@dataclass(frozen=True)
class AttachConfig:
    """An existing server: a libpq connection string whose role may ALTER
    SYSTEM; restarts only with `allow_restart` and the command that does them."""

    dsn: str
    allow_restart: bool = False
    restart_command: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PostgresSettings:
    scale: int = 10
    bindir: str | None = None
    start_timeout_s: float = 60.0
    pgbench: PgbenchConfig = field(default_factory=PgbenchConfig)
    attach: AttachConfig | None = None
    allow_data_loss_on_crash: bool = False
    latency_percentile: str = "p95"

    @property
    def managed(self) -> bool:
        return self.attach is None

    @classmethod
    def from_block(cls, block: Mapping[str, Any] | None) -> "PostgresSettings":
        b = dict(block or {})
        pg = dict(b.get("pgbench") or {})
        attach = None
        if b.get("attach") is not None:
            a = dict(b["attach"])
            cmd = a.get("restart_command")
            if isinstance(cmd, str):
                import shlex

                cmd = shlex.split(cmd)
            attach = AttachConfig(dsn=str(a["dsn"]), allow_restart=bool(a.get("allow_restart", False)),
                                  restart_command=tuple(map(str, cmd)) if cmd else None)
        return cls(
            scale=int(b.get("scale", 10)),
            bindir=b.get("bindir"),
            start_timeout_s=float(b.get("start_timeout_s", 60.0)),
            pgbench=PgbenchConfig(
                mode=str(pg.get("mode", "tpcb")), script=pg.get("script"), clients=int(pg.get("clients", 8)),
                threads=int(pg.get("threads", 2)), duration_s=float(pg.get("duration_s", 10.0)),
                warmup_s=float(pg.get("warmup_s", 2.0)), timeout_s=float(pg.get("timeout_s", 120.0))),
            attach=attach,
            allow_data_loss_on_crash=bool(b.get("allow_data_loss_on_crash", False)),
            latency_percentile=str(b.get("latency_percentile", "p95")),
        )

    @classmethod
    def from_spec(cls, spec) -> "PostgresSettings":
        return cls.from_block((spec.target_config or {}) if spec is not None else {})


def script_problem(text: str) -> str | None:
    """Why a pgbench script may not run unattended, or None: `\\shell` and
    `\\setshell` run programs (docs: pgbench, meta commands)."""
    for n, line in enumerate(text.splitlines(), 1):
        word = line.strip().split(maxsplit=1)[0] if line.strip() else ""
        if word.lower() in ("\\shell", "\\setshell"):
            return f"line {n} runs a program ({word}); cli-ai runs pgbench scripts of SQL and \\set only"
    return None


__all__ = ["AttachConfig", "DEFAULT_BINDIR", "DEFAULT_METRIC", "MODES", "PG_METRICS", "PgbenchConfig",
           "PostgresSettings", "script_problem"]
