"""The bottom layer: data types every other layer shares (a knob's value, the
backend interface). It imports nothing else of cli_ai but errors."""
