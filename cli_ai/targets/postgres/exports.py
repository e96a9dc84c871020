"""A verified postgres result as `ALTER SYSTEM` statements (`--format sql`)
or a `postgresql.conf` snippet (`--format conf`). Values come checked by
`PostgresTarget.result_values` (catalogued, typed, in the safe range); every
text from the result stays on a comment line; values are quoted literals."""

from __future__ import annotations

import re
from typing import Any, Mapping

from cli_ai.core.backend import Value
from cli_ai.targets.exports import header
from cli_ai.targets.postgres.catalog import display_text, lookup, sql_text


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _restart_note(values: Mapping[str, Value]) -> list[str]:
    restart = [n for n in values if lookup(n) is not None and lookup(n).needs_restart]
    return [f"-- {', '.join(restart)}: take effect after a server restart"] if restart else []


def render_sql(values: Mapping[str, Value], result: Mapping[str, Any]) -> str:
    lines = header(result, "--")
    lines += [f"ALTER SYSTEM SET {name} = {_literal(sql_text(lookup(name), v))};" for name, v in values.items()]
    lines.append("SELECT pg_reload_conf();")
    lines += _restart_note(values)
    return "\n".join(lines) + "\n"


def render_conf(values: Mapping[str, Value], result: Mapping[str, Any]) -> str:
    lines = header(result)
    lines.append("# paste into postgresql.conf (or a file it includes), then reload; restart-only settings are marked")
    for name, v in values.items():
        setting = lookup(name)
        mark = "  # needs a restart" if setting.needs_restart else ""
        text = display_text(setting, v)
        # Numbers, units and words go in bare, as postgresql.conf.sample writes them.
        lines.append(f"{name} = {text if re.fullmatch(r'[A-Za-z0-9.]+', text) else _literal(text)}{mark}")
    return "\n".join(lines) + "\n"


POSTGRES_EXPORTS = {"sql": render_sql, "conf": render_conf}

__all__ = ["POSTGRES_EXPORTS", "render_conf", "render_sql"]
