"""Replay buffers (seed 001): the seed's validation scenarios, the sampling
distribution of prioritized replay, save/load refusal, and SumTree properties."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli_ai.tactician.replay import Experience, PrioritizedReplayBuffer, ReplayBuffer, SumTree


def fill(buffer, n, state_dim=60, seed=0, actions=None):
    rng = np.random.default_rng(seed)
    for i in range(n):
        action = i % 7 if actions is None else actions(i)
        buffer.push(rng.standard_normal(state_dim), action, float(rng.standard_normal()), rng.standard_normal(state_dim), i % 10 == 9)


# -- seed 001: basic operations and shapes -------------------------------------------


def test_uniform_basic_ops_and_shapes():
    buffer = ReplayBuffer(capacity=1000, seed=42)
    fill(buffer, 100)
    assert len(buffer) == 100
    assert buffer.is_ready(32) and not buffer.is_ready(101)
    states, actions, rewards, next_states, dones = buffer.sample(32)
    assert states.shape == (32, 60) and next_states.shape == (32, 60)
    assert actions.shape == rewards.shape == dones.shape == (32,)
    # Uniform sampling without replacement: 32 distinct transitions.
    assert len({s.tobytes() for s in states}) == 32


def test_prioritized_basic_ops_and_shapes():
    buffer = PrioritizedReplayBuffer(capacity=1000, seed=1)
    fill(buffer, 100)
    states, actions, rewards, next_states, dones, weights, indices = buffer.sample(32)
    assert states.shape == next_states.shape == (32, 60)
    assert actions.shape == rewards.shape == dones.shape == weights.shape == indices.shape == (32,)
    assert indices.dtype == np.int64 and indices.min() >= 0 and indices.max() < 100
    # The returned indices point at the returned transitions.
    for k in range(32):
        assert np.array_equal(buffer[int(indices[k])].state, states[k])
    buffer.update_priorities(indices, np.abs(np.random.default_rng(0).standard_normal(32)) + 0.01)


def test_dtypes_for_pytorch():
    for buffer in (ReplayBuffer(100, seed=0), PrioritizedReplayBuffer(100, seed=0)):
        buffer.push(np.ones(4, dtype=np.float64), np.int32(3), 1, np.zeros(4, dtype=np.float64), True)
        buffer.push([1, 2, 3, 4], 5, 0.5, [4, 3, 2, 1], False)
        out = buffer.sample(2)
        states, actions, rewards, next_states, dones = out[:5]
        assert states.dtype == next_states.dtype == np.float32
        assert actions.dtype == np.int64
        assert rewards.dtype == dones.dtype == np.float32
        assert set(dones.tolist()) == {0.0, 1.0}
        if isinstance(buffer, PrioritizedReplayBuffer):
            assert out[5].dtype == np.float32


def test_continuous_actions_stored_as_float32():
    buffer = ReplayBuffer(50, seed=0)
    buffer.push(np.zeros(3), np.array([0.25, -0.5]), 0.0, np.zeros(3), False)
    buffer.push(np.zeros(3), np.array([1, 2]), 0.0, np.zeros(3), False)  # ints into a float buffer: fine
    _, actions, *_ = buffer.sample(2)
    assert actions.dtype == np.float32 and actions.shape == (2, 2)
    assert sorted(actions[:, 0].tolist()) == [0.25, 1.0]


def test_discrete_buffer_refuses_fractional_and_misshapen_input():
    buffer = ReplayBuffer(50, seed=0)
    buffer.push(np.zeros(3), 2, 0.0, np.zeros(3), False)
    buffer.push(np.zeros(3), 3.0, 0.0, np.zeros(3), False)  # a whole float is a valid discrete action
    with pytest.raises(ValueError, match="int64"):
        buffer.push(np.zeros(3), 0.5, 0.0, np.zeros(3), False)
    with pytest.raises(ValueError, match="state shape"):
        buffer.push(np.zeros(4), 1, 0.0, np.zeros(4), False)
    with pytest.raises(ValueError, match="action shape"):
        buffer.push(np.zeros(3), [1, 2], 0.0, np.zeros(3), False)
    assert len(buffer) == 2


def test_fifo_eviction_at_capacity():
    for buffer in (ReplayBuffer(10, seed=0), PrioritizedReplayBuffer(10, seed=0)):
        for i in range(15):
            buffer.push(np.full(2, i), i, float(i), np.full(2, i + 1), False)
        assert len(buffer) == 10
        rewards = buffer.sample(10)[2]
        if isinstance(buffer, ReplayBuffer) and not isinstance(buffer, PrioritizedReplayBuffer):
            # Without replacement, 10 of 10: exactly the 10 newest survive.
            assert sorted(rewards.tolist()) == list(range(5, 15))
        assert rewards.min() >= 5


def test_extend_equals_pushing_one_by_one():
    rng = np.random.default_rng(3)
    s, ns = rng.standard_normal((25, 3)), rng.standard_normal((25, 3))
    a, r, d = rng.integers(0, 4, 25), rng.standard_normal(25), rng.random(25) < 0.2
    one, many = PrioritizedReplayBuffer(10, seed=5), PrioritizedReplayBuffer(10, seed=5)
    for k in range(25):
        one.push(s[k], a[k], r[k], ns[k], d[k])
    many.extend(s[:4], a[:4], r[:4], ns[:4], d[:4])
    many.extend(s[4:], a[4:], r[4:], ns[4:], d[4:])  # longer than the capacity: only the tail stays
    assert len(one) == len(many) == 10
    for x, y in zip(one.sample(8), many.sample(8)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(one.priorities(), many.priorities())


def test_seeded_sampling_is_reproducible():
    a, b = ReplayBuffer(100, seed=7), ReplayBuffer(100, seed=7)
    fill(a, 50)
    fill(b, 50)
    for x, y in zip(a.sample(16), b.sample(16)):
        np.testing.assert_array_equal(x, y)


def test_experience_namedtuple_and_indexing():
    buffer = ReplayBuffer(5)
    buffer.push([1.0, 2.0], 1, 0.5, [3.0, 4.0], True)
    e = buffer[0]
    assert isinstance(e, Experience) and e._fields == ("state", "action", "reward", "next_state", "done")
    assert e.reward == 0.5 and e.done is True and e.state.dtype == np.float32


# -- seed 001: edge cases -----------------------------------------------------------


@pytest.mark.parametrize("capacity", [0, -1, 1.5, "10", None, True])
def test_invalid_capacity(capacity):
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(capacity)
    with pytest.raises(ValueError, match="capacity"):
        PrioritizedReplayBuffer(capacity)


def test_over_sampling_and_bad_batch_size():
    for buffer in (ReplayBuffer(100), PrioritizedReplayBuffer(100)):
        with pytest.raises(ValueError, match="cannot sample"):
            buffer.sample(1)
        fill(buffer, 10)
        assert buffer.is_ready(5) and not buffer.is_ready(20)
        with pytest.raises(ValueError, match="cannot sample 20"):
            buffer.sample(20)
        with pytest.raises(ValueError, match="batch_size"):
            buffer.sample(0)


def test_clear():
    buffer = PrioritizedReplayBuffer(100, seed=0)
    fill(buffer, 10)
    buffer.update_priorities([0], [50.0])
    buffer.sample(4)
    buffer.clear()
    assert len(buffer) == 0 and buffer.tree.total_priority == 0.0 and buffer.max_priority == 1.0
    assert buffer.frame == 1  # training progress is kept
    buffer.push(np.zeros(3), 1, 0.0, np.zeros(3), False)  # new shapes allowed after clear
    assert buffer.state_shape == (3,)


@pytest.mark.parametrize(
    "kwargs",
    [{"alpha": -0.1}, {"beta_start": 1.5}, {"beta_end": -1}, {"beta_frames": 0}, {"epsilon": -1e-6}],
)
def test_invalid_prioritized_parameters(kwargs):
    with pytest.raises(ValueError):
        PrioritizedReplayBuffer(10, **kwargs)


# -- seed 001: priorities, weights, beta ---------------------------------------------


def test_weights_normalized_max_one_and_match_formula():
    buffer = PrioritizedReplayBuffer(1000, alpha=0.6, beta_start=0.4, seed=3)
    fill(buffer, 200)
    rng = np.random.default_rng(4)
    buffer.update_priorities(np.arange(200), rng.exponential(1.0, 200))
    for _ in range(5):
        beta = buffer.beta
        *_, weights, indices = buffer.sample(64)
        assert weights.max() == pytest.approx(1.0)
        assert weights.min() > 0
        p = buffer.priorities()
        expected = (len(buffer) * p[indices] / p.sum()) ** (-beta)
        np.testing.assert_allclose(weights, expected / expected.max(), rtol=1e-5)


def test_fresh_buffer_weights_are_all_one():
    buffer = PrioritizedReplayBuffer(1000, seed=0)
    fill(buffer, 100)
    weights = buffer.sample(32)[5]
    np.testing.assert_allclose(weights, 1.0)


def test_priority_updates_and_max_priority():
    buffer = PrioritizedReplayBuffer(100, alpha=0.5, epsilon=0.01, seed=0)
    fill(buffer, 10)
    assert buffer.max_priority == 1.0
    np.testing.assert_allclose(buffer.priorities(), 1.0)  # new items: max priority
    buffer.update_priorities([2, 3], [3.99, -0.99])  # |TD error|: the sign does not matter
    p = buffer.priorities()
    assert p[2] == pytest.approx(4.0**0.5) and p[3] == pytest.approx(1.0)
    assert buffer.max_priority == pytest.approx(4.0)
    slot = buffer.push(np.zeros(60), 1, 0.0, np.zeros(60), False)
    assert buffer.priorities()[slot] == pytest.approx(2.0)  # the max priority, to the alpha
    slot = buffer.push(np.zeros(60), 1, 0.0, np.zeros(60), False, priority=0.24)
    assert buffer.priorities()[slot] == pytest.approx(0.5)
    # Duplicate indices in one update: the last value wins, the tree stays consistent.
    buffer.update_priorities([5, 5, 5], [8.99, 0.0, 0.15])
    assert buffer.priorities()[5] == pytest.approx(0.4)
    assert buffer.tree.total_priority == pytest.approx(buffer.priorities().sum())
    with pytest.raises(ValueError):
        buffer.update_priorities([1], [np.nan])
    with pytest.raises(IndexError):
        buffer.update_priorities([50], [1.0])  # beyond the filled slots
    with pytest.raises(ValueError):
        buffer.update_priorities([1, 2], [1.0])


def test_beta_anneals_with_frames():
    buffer = PrioritizedReplayBuffer(100, beta_start=0.4, beta_end=1.0, beta_frames=100, seed=0)
    fill(buffer, 20)
    assert buffer.beta == pytest.approx(0.4) and buffer.frame == 0
    for _ in range(11):
        buffer.sample(4)
    assert buffer.frame == 11
    assert buffer.beta == pytest.approx(0.4 + 0.6 * 11 / 100)
    for _ in range(200):
        buffer.sample(4)
    assert buffer.beta == pytest.approx(1.0)  # capped at beta_end


def test_high_priority_item_sampled_far_more_often():
    buffer = PrioritizedReplayBuffer(1000, seed=0)
    fill(buffer, 200)
    buffer.update_priorities(np.arange(200), np.full(200, 0.01))
    buffer.update_priorities([99], [100.0])
    counts = np.zeros(200, dtype=int)
    for _ in range(100):
        indices = buffer.sample(5)[6]
        np.add.at(counts, indices, 1)
    # p^0.6: 100 -> 15.8 vs 0.01 -> 0.063 each; item 99 holds ~56% of the mass.
    assert counts[99] > 200
    assert counts[99] > 20 * np.delete(counts, 99).max()


# Upper 0.1% point of the chi-square distribution with 19 degrees of freedom.
CHI2_19_999 = 43.82


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_sampling_frequencies_match_p_alpha(alpha):
    """Empirical frequencies of a fixed-seed run against p^alpha / sum p^alpha.

    Stratified sampling has less variance than independent draws, so the
    multinomial chi-square bound is conservative: a correct sampler passes by
    a wide margin, a wrong exponent or an off-by-one leaf fails it.
    """
    n = 20
    buffer = PrioritizedReplayBuffer(64, alpha=alpha, epsilon=0.0, seed=1234)
    fill(buffer, n, state_dim=2)
    priorities = np.linspace(0.1, 3.0, n)
    buffer.update_priorities(np.arange(n), priorities)
    expected_p = priorities**alpha / np.sum(priorities**alpha)
    counts = np.zeros(n)
    draws = 0
    for _ in range(3000):
        indices = buffer.sample(16)[6]
        counts += np.bincount(indices, minlength=n)
        draws += 16
    expected = expected_p * draws
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert chi2 < CHI2_19_999, (chi2, counts, expected)
    # ... and every bin within 4 binomial standard deviations of its expectation.
    sigma = np.sqrt(draws * expected_p * (1 - expected_p))
    assert np.all(np.abs(counts - expected) < 4 * sigma), (counts, expected)


def test_zero_priority_items_are_never_drawn():
    buffer = PrioritizedReplayBuffer(2048, epsilon=0.0, seed=0)
    fill(buffer, 1500, state_dim=1)
    pr = np.zeros(1500)
    pr[::7] = 1.0
    buffer.update_priorities(np.arange(1500), pr)
    for _ in range(50):
        indices = buffer.sample(128)[6]
        assert np.all(indices % 7 == 0)


# -- save / load ----------------------------------------------------------------------


def test_save_load_round_trip_uniform(tmp_path):
    buffer = ReplayBuffer(50, seed=9)
    fill(buffer, 70, state_dim=5)  # wrapped: FIFO position matters
    path = tmp_path / "uniform.buf"  # no .npz suffix: the file is written under this exact name
    buffer.save(path)
    assert path.exists() and not (tmp_path / "uniform.buf.npz").exists()
    with np.load(path, allow_pickle=False) as z:  # plain data, readable without pickle
        assert str(z["kind"]) == "ReplayBuffer"
    restored = ReplayBuffer(50, seed=123)
    restored.load(path)
    assert len(restored) == 50
    # Same contents and the same random stream: the next batches are identical.
    for x, y in zip(buffer.sample(20), restored.sample(20)):
        np.testing.assert_array_equal(x, y)
    buffer.push(np.zeros(5), 1, 0.0, np.zeros(5), False)
    restored.push(np.zeros(5), 1, 0.0, np.zeros(5), False)
    for x, y in zip(buffer.sample(50), restored.sample(50)):
        np.testing.assert_array_equal(x, y)


def test_save_load_round_trip_prioritized(tmp_path):
    buffer = PrioritizedReplayBuffer(100, alpha=0.7, beta_frames=500, seed=2)
    fill(buffer, 120, actions=lambda i: np.array([i / 10.0, -i / 10.0]))  # continuous actions
    *_, indices = buffer.sample(16)
    buffer.update_priorities(indices, np.linspace(0.5, 9.0, 16))
    path = tmp_path / "per.npz"
    buffer.save(path)
    restored = PrioritizedReplayBuffer(100, alpha=0.7, beta_frames=500)
    restored.load(path)
    assert restored.frame == buffer.frame and restored.beta == buffer.beta
    assert restored.max_priority == buffer.max_priority
    assert restored.action_dtype == np.float32
    np.testing.assert_array_equal(restored.priorities(), buffer.priorities())
    assert restored.tree.total_priority == pytest.approx(buffer.tree.total_priority)
    for x, y in zip(buffer.sample(32), restored.sample(32)):
        np.testing.assert_array_equal(x, y)


def test_save_load_empty_buffer(tmp_path):
    ReplayBuffer(10).save(tmp_path / "empty.npz")
    restored = ReplayBuffer(10)
    fill(restored, 3)
    restored.load(tmp_path / "empty.npz")
    assert len(restored) == 0 and restored.state_shape is None


def _rewrite(src, dst, **changes):
    with np.load(src, allow_pickle=False) as z:
        fields = {k: z[k] for k in z.files}
    fields.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del fields[key]
    with open(dst, "wb") as f:
        np.savez(f, **fields)


def test_load_refuses_mismatching_files(tmp_path):
    per = PrioritizedReplayBuffer(100, seed=0)
    fill(per, 30, state_dim=4)
    good = tmp_path / "good.npz"
    per.save(good)

    def refused(buffer, path, match):
        before = len(buffer)
        with pytest.raises(ValueError, match=match):
            buffer.load(path)
        assert len(buffer) == before  # untouched

    target = PrioritizedReplayBuffer(100, seed=0)
    fill(target, 5, state_dim=4)
    # Wrong kind: a prioritized file into a uniform buffer.
    refused(ReplayBuffer(100), good, "holds a PrioritizedReplayBuffer, not a ReplayBuffer")
    # Wrong capacity, wrong alpha.
    refused(PrioritizedReplayBuffer(50), good, "capacity 100")
    refused(PrioritizedReplayBuffer(100, alpha=0.5), good, "alpha")
    # Wrong version.
    _rewrite(good, tmp_path / "v.npz", version=np.array(99))
    refused(target, tmp_path / "v.npz", "version 99")
    # Wrong shapes: states of another width than next_states, rewards too short.
    _rewrite(good, tmp_path / "s.npz", states=np.zeros((30, 5), np.float32))
    refused(target, tmp_path / "s.npz", "'states'")
    _rewrite(good, tmp_path / "r.npz", rewards=np.zeros(29, np.float32))
    refused(target, tmp_path / "r.npz", "'rewards'")
    _rewrite(good, tmp_path / "p.npz", priorities=np.zeros(30))
    refused(target, tmp_path / "p.npz", "priorities")
    # A missing field.
    _rewrite(good, tmp_path / "m.npz", dones=None)
    refused(target, tmp_path / "m.npz", "missing field 'dones'")
    # An object array would need pickle: refused, never unpickled.
    with open(tmp_path / "o.npz", "wb") as f:
        np.savez(f, kind=np.array(["x", None], dtype=object))
    refused(target, tmp_path / "o.npz", "not a readable")
    # Corrupt: truncated archive, garbage, a zip with foreign content.
    data = good.read_bytes()
    (tmp_path / "t.npz").write_bytes(data[: len(data) // 2])
    refused(target, tmp_path / "t.npz", "not a readable")
    (tmp_path / "g.npz").write_bytes(b"definitely not numpy" * 10)
    refused(target, tmp_path / "g.npz", "not a readable|not a PrioritizedReplayBuffer")
    with zipfile.ZipFile(tmp_path / "z.npz", "w") as zf:
        zf.writestr("hello.txt", "hi")
    refused(target, tmp_path / "z.npz", "missing field")
    # A bare .npy array, and a random-generator state naming something else.
    np.save(tmp_path / "a.npy", np.zeros(3))
    refused(target, tmp_path / "a.npy", "not a readable")
    _rewrite(good, tmp_path / "rng.npz", rng_state=np.array('{"bit_generator": "seed"}'))
    refused(target, tmp_path / "rng.npz", "random generator")
    # A missing file is not a format problem.
    with pytest.raises(FileNotFoundError):
        target.load(tmp_path / "absent.npz")
    # After all that, the good file still loads.
    target.load(good)
    assert len(target) == 30


# -- SumTree ------------------------------------------------------------------------


def test_sumtree_seed_api():
    tree = SumTree(4)
    for k, (p, d) in enumerate([(1.0, "a"), (2.0, "b"), (3.0, "c"), (4.0, "d")]):
        assert tree.add(p, d) == k
    assert tree.total_priority == 10.0 and len(tree) == 4
    assert tree.max_priority == 4.0 and tree.min_priority == 1.0
    tree_idx, priority, data = tree.get(0.5)
    assert (priority, data) == (1.0, "a")
    tree_idx, priority, data = tree.get(3.5)  # 1 + 2 <= 3.5 < 1 + 2 + 3
    assert (priority, data) == (3.0, "c")
    tree.update(tree_idx, 0.5)
    assert tree.total_priority == 7.5 and tree.get(3.6)[2] == "d"
    tree.add(10.0, "e")  # FIFO: overwrites "a"
    assert tree.total_priority == 16.5 and tree.get(1.0)[2] == "e"
    nodes, prios, datas = tree.get(np.array([0.0, 15.0]))
    assert list(datas) == ["e", "d"] and list(prios) == [10.0, 4.0]
    with pytest.raises(IndexError):
        tree.update(0, 1.0)  # node 0 is not a leaf
    with pytest.raises(ValueError):
        tree.add(-1.0)
    empty = SumTree(3)
    assert empty.total_priority == 0.0 and empty.min_priority == 0.0
    with pytest.raises(ValueError, match="total priority is 0"):
        empty.get(0.0)
    with pytest.raises(ValueError):
        SumTree(0)


def test_sumtree_guarded_descent_never_enters_empty_subtree():
    tree = SumTree(4096)  # two binary levels below the cumsum level
    tree.update_leaves(np.array([0, 4]), np.array([1.0, 1.0]))
    # A value past a node's sum (what float rounding can produce) would send the
    # plain descent right into empty leaves; the guarded one stays on leaf 0.
    node = np.array([1 << tree.top])
    assert tree._descend_guarded(node, np.array([5.0]))[0] - tree.leaf_offset == 0
    assert tree.get(2.0)[1] == 1.0  # clipped to the last non-empty leaf


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(1, 3000),
    ops=st.lists(
        st.tuples(st.sampled_from(["add", "update", "batch"]), st.integers(0, 10**6), st.floats(0.0, 1e3)),
        min_size=1,
        max_size=60,
    ),
)
def test_sumtree_total_is_sum_of_leaves(capacity, ops):
    tree = SumTree(capacity)
    reference = np.zeros(capacity)
    write = 0
    rng = np.random.default_rng(len(ops))
    for kind, k, p in ops:
        if kind == "add":
            leaf = tree.add(p)
            assert leaf == write
            reference[leaf] = p
            write = (write + 1) % capacity
        elif kind == "update":
            leaf = k % capacity
            tree.update(leaf + tree.leaf_offset, p)
            reference[leaf] = p
        else:  # a vectorized batch with repeats: the last value for a leaf wins
            leaves = rng.integers(0, capacity, size=1 + k % 300)
            prios = rng.random(leaves.size) * p
            tree.update_leaves(leaves, prios)
            for leaf, q in zip(leaves, prios):
                reference[leaf] = q
    np.testing.assert_array_equal(tree.leaves, reference)
    assert tree.total_priority == pytest.approx(reference.sum(), rel=1e-9, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    priorities=st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 1e3)), min_size=1, max_size=2500),
    fractions=st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=40),
)
def test_sumtree_get_lands_on_the_right_leaf(priorities, fractions):
    p = np.array(priorities)
    if p.sum() == 0:
        p[-1] = 1.0
    tree = SumTree(len(p))
    tree.update_leaves(np.arange(len(p)), p)
    total = tree.total_priority
    cumulative = np.cumsum(p)
    values = np.array(fractions) * total
    nodes, prios, _ = tree.get(values)
    leaves = nodes - tree.leaf_offset
    assert np.all(prios > 0)  # never an empty leaf
    np.testing.assert_array_equal(prios, p[leaves])
    # The running sum crosses v inside the chosen leaf (up to float rounding).
    tol = 1e-9 * total
    lower = cumulative[leaves] - p[leaves]
    assert np.all(lower <= values + tol)
    assert np.all(values < cumulative[leaves] + tol)
