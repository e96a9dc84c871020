"""The tuning spec: the one contract between the strategist and the tactician.

`load_spec(path)` and `spec_from_dict(data)` validate against
`schemas/tuning_spec.schema.json`, then check what a schema cannot say (min
above max, duplicate params, placeholders of the command target, ...), and
return typed, default-filled dataclasses. Every problem is reported at once,
one line each, prefixed with its JSON path (`action_space[1].max: ...`).

Three modules: `model` (the dataclasses and defaults), `validate` (the schema
and the semantic checks), `parse` (text and dicts to a `TuningSpec`).
"""

from __future__ import annotations

from cli_ai.spec.model import (
    ALGORITHMS, COMMAND_KNOB_NAME, DEFAULT_STATE_SPACE, DEFAULT_TRAINING, PLACEHOLDER, SPEC_SHAPES, TARGETS,
    BenchmarkSpec, KnobSpec, KnobType, RewardConfig, SafetyConfig, Scale, SpecShape, StateMetric,
    TrainingConfig, TuningSpec, VectorElement,
)
from cli_ai.spec.parse import (
    load_spec, parse_json_text, runner_for_command, spec_from_dict, strip_trailing_redirect,
)
from cli_ai.spec.validate import (
    command_placeholders, format_path, schema, schema_path, validation_problems,
)

__all__ = [
    "ALGORITHMS",
    "BenchmarkSpec",
    "COMMAND_KNOB_NAME",
    "DEFAULT_STATE_SPACE",
    "DEFAULT_TRAINING",
    "KnobSpec",
    "KnobType",
    "PLACEHOLDER",
    "RewardConfig",
    "SPEC_SHAPES",
    "SafetyConfig",
    "Scale",
    "SpecShape",
    "StateMetric",
    "TARGETS",
    "TrainingConfig",
    "TuningSpec",
    "VectorElement",
    "command_placeholders",
    "format_path",
    "load_spec",
    "parse_json_text",
    "runner_for_command",
    "schema",
    "schema_path",
    "spec_from_dict",
    "strip_trailing_redirect",
    "validation_problems",
]
