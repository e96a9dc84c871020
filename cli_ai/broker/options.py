"""Mosquitto options as knob values: the catalogue entry of each, and its
text form in mosquitto.conf both ways."""

from __future__ import annotations


from cli_ai.errors import BackendWriteError
from cli_ai.safety.catalog import MosquittoOption, load_mosquitto_catalog
from cli_ai.core.backend import Value


def catalog() -> dict[str, MosquittoOption]:
    return load_mosquitto_catalog()


def option(name: str) -> MosquittoOption:
    opt = catalog().get(name)
    if opt is None:
        raise BackendWriteError(f"{name}: not a mosquitto option cli-ai tunes (see the catalogue's mosquitto section)")
    return opt


def format_value(name: str, value: Value) -> str:
    """A value as mosquitto.conf spells it (true/false for flags)."""
    kind = option(name).type
    if kind == "bool":
        if isinstance(value, str):
            return "true" if value.strip().lower() in ("true", "1", "yes", "on") else "false"
        return "true" if value else "false"
    if kind == "int":
        return str(int(value))  # type: ignore[arg-type]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_value(name: str, text: str) -> Value:
    kind = option(name).type
    text = text.strip()
    if kind == "bool":
        return text.lower() == "true"
    try:
        return int(text) if kind == "int" else float(text)
    except ValueError:
        return text


def coerce(name: str, value: Value) -> Value:
    """A knob value in the option's own type (int 0/1 knobs of a flag become bools)."""
    return parse_value(name, format_value(name, value))


def default_value(name: str) -> Value:
    """mosquitto's own default of an option (the catalogue's `default`)."""
    d = option(name).default
    return coerce(name, d) if d is not None else d
