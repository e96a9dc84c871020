"""Knobs: normalized action <-> native value for every knob type, always
inside the (safety-narrowed) range."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli_ai.spec import KnobSpec, VectorElement
from cli_ai.tactician.knobs import Knob, KnobSpace, describe_range, repair_order


def test_int_linear_endpoints_and_middle():
    k = Knob(KnobSpec("vm.dirty_ratio", "int", 5, 40))
    assert k.to_native([-1.0]) == 5 and k.to_native([1.0]) == 40
    assert k.to_native([0.0]) == 23  # 36 values, 36 equal bins: the middle opens the 19th
    assert k.to_native([7.0]) == 40 and k.to_native([-3.0]) == 5  # clamped
    assert k.to_action(40)[0] == pytest.approx(1.0 - 1 / 36)  # the centre of the top bin


def test_int_values_get_equal_width_bins():
    """Uniform actions give every integer the same share: rounding gave the
    range ends half-width bins (a 0..2 knob came out 25/50/25 %)."""
    k = Knob(KnobSpec("small", "int", 0, 2))
    actions = np.linspace(-1.0, 1.0, 30001)
    counts = np.bincount([k.to_native([a]) for a in actions], minlength=3) / len(actions)
    assert counts == pytest.approx([1 / 3, 1 / 3, 1 / 3], abs=0.001)
    log = Knob(KnobSpec("pages", "int", 1, 8, scale="log"))
    shares = np.bincount([log.to_native([a]) for a in actions], minlength=9)[1:] / len(actions)
    widths = np.diff(np.log(np.arange(1, 10))) / np.log(9)  # bin [v, v+1) in log space
    assert shares == pytest.approx(widths, abs=0.001)


@pytest.mark.parametrize("lo,hi,scale", [(0, 2, "linear"), (5, 40, "linear"), (1, 64, "log"), (1000, 1300, "log")])
def test_int_round_trips_every_value(lo, hi, scale):
    k = Knob(KnobSpec("n", "int", lo, hi, scale=scale))
    assert [k.to_native(k.to_action(v)) for v in range(lo, hi + 1)] == list(range(lo, hi + 1))


def test_log_scale_spaces_orders_of_magnitude():
    k = Knob(KnobSpec("net.core.rmem_max", "int", 1000, 1_000_000, scale="log"))
    assert k.to_native([0.0]) == 31622  # the bin holding the geometric middle (31622.8)
    assert k.to_native([-1 / 3]) == 10000
    assert k.to_action(100000)[0] == pytest.approx(1 / 3, abs=1e-5)  # the centre of its bin


def test_float_keeps_precision_and_range():
    k = Knob(KnobSpec("ratio", "float", 0.1, 0.9))
    v = k.to_native([0.3])
    assert isinstance(v, float) and v == pytest.approx(0.62)


def test_bool_and_enum():
    b = Knob(KnobSpec("flag", "bool"))
    assert b.to_native([0.2]) is True and b.to_native([-0.2]) is False
    assert b.to_native(b.to_action(True)) is True and b.to_native(b.to_action(0)) is False
    e = Knob(KnobSpec("cc", "enum", values=("cubic", "reno", "bbr")))
    assert [e.to_native([x]) for x in (-1.0, -0.4, 0.0, 0.4, 1.0)] == ["cubic", "cubic", "reno", "bbr", "bbr"]
    for v in ("cubic", "reno", "bbr"):
        assert e.to_native(e.to_action(v)) == v


def test_vector_fixed_elements_and_order():
    spec = KnobSpec("net.ipv4.tcp_rmem", "vector", elements=(
        VectorElement(4096, 4096), VectorElement(16384, 1048576), VectorElement(65536, 16777216, "log")))
    k = Knob(spec, ordered="non-decreasing")
    assert k.dims == 2
    low = k.to_native([-1.0, -1.0])
    assert low == (4096, 16384, 65536)
    hi = k.to_native([1.0, -1.0])
    assert hi[0] <= hi[1] <= hi[2]
    ports = Knob(KnobSpec("net.ipv4.ip_local_port_range", "vector",
                          elements=(VectorElement(1024, 49151), VectorElement(32768, 65535))), ordered="increasing")
    lo, high = ports.to_native([1.0, -1.0])
    assert lo < high and 32768 <= high <= 65535


def test_repair_order_stays_in_bounds():
    assert repair_order([10, 5, 7], [(0, 20), (0, 20), (0, 20)], "non-decreasing") == [10, 10, 10]
    assert repair_order([50, 40], [(0, 60), (30, 45)], "increasing") == [44, 45]


def test_huge_ranges_clamp_in_integer_domain():
    top = 9223372036854775807
    k = Knob(KnobSpec("fs.file-max", "int", 1048576, top, scale="log"))
    assert k.to_native([1.0]) == top
    assert k.to_native([-1.0]) == 1048576


def test_space_flattens_and_round_trips():
    space = KnobSpace.from_specs([
        KnobSpec("a", "int", 1, 100),
        KnobSpec("b", "vector", elements=(VectorElement(1, 1), VectorElement(10, 20), VectorElement(30, 40))),
        KnobSpec("c", "enum", values=("x", "y")),
    ])
    assert space.dims == 4 and space.names == ["a", "b", "c"]
    values = {"a": 37, "b": (1, 15, 33), "c": "y"}
    assert space.to_native(space.to_action(values)) == values
    with pytest.raises(ValueError, match="expected an action of 4"):
        space.to_native([0.0, 0.0])
    assert describe_range(space.knobs[1].spec) == "1 [10..20] [30..40]"


@settings(max_examples=200, deadline=None)
@given(
    lo=st.integers(-1000, 10**6), width=st.integers(1, 10**9), log=st.booleans(),
    action=st.floats(-5, 5, allow_nan=False),
)
def test_int_always_inside_range(lo, width, log, action):
    if log:
        lo = max(lo, 1)
    k = Knob(KnobSpec("x", "int", lo, lo + width, scale="log" if log else "linear"))
    v = k.to_native([action])
    assert isinstance(v, int) and lo <= v <= lo + width


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=3, max_size=3))
def test_tcp_rmem_always_ordered_and_bounded(action):
    els = (VectorElement(4096, 65536), VectorElement(16384, 16777216, "log"), VectorElement(65536, 134217728, "log"))
    k = Knob(KnobSpec("net.ipv4.tcp_rmem", "vector", elements=els), ordered="non-decreasing")
    v = k.to_native(np.array(action))
    assert v[0] <= v[1] <= v[2]
    for x, el in zip(v, els):
        assert el.min <= x <= el.max


@pytest.mark.parametrize("lo,hi,scale,values", [
    (65536, 2**30, "log", [100_000_000, 500_000_007, 65536, 2**30]),   # mosquitto's max_queued_bytes
    (1, 2**27, "linear", [134_217_727, 1, 2**27, 99_999_999]),
])
def test_large_integers_survive_the_round_trip(lo, hi, scale, values):
    """A float32 action shifted them (100000000 came back as 100000002):
    `KnobSpace.clamp`, the optimiser's start point and the broker columns use it."""
    space = KnobSpace.from_specs([KnobSpec("n", "int", lo, hi, scale=scale)])
    for v in values:
        assert space.clamp({"n": v}) == {"n": v}
