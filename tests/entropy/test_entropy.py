"""Frozen tables, prediction modes and the format 1 (constriction) coder of old streams."""

from __future__ import annotations

import numpy as np
import pytest

from walloc_io.entropy import EntropyTables, fit_tables, predict, quantise_counts
from walloc_io.entropy.context import Contexts, local_energy
from walloc_io.entropy.format1 import _contexts, decode, encode
from walloc_io.entropy.tables import ESCAPE, join_escapes, split_escapes
from walloc_io.errors import BitstreamError


def random_walk(shape, seed=0, step=3):
    rng = np.random.default_rng(seed)
    return np.clip(np.cumsum(rng.integers(-step, step + 1, shape), axis=-1), -127, 127)


def test_quantise_counts_sums_and_floor():
    freq = quantise_counts(np.array([0, 5, 1000, 3, 0, 0, 17]))
    assert freq.sum() == 1 << 16 and freq.min() >= 1 and freq.dtype == np.int32
    assert freq.argmax() == 2
    # No data: uniform, the spare unit going to the lowest symbol (integer, deterministic).
    assert quantise_counts(np.zeros(5, int)).tolist() == [13108, 13107, 13107, 13107, 13107]


def test_quantise_counts_rejects_oversized_alphabet():
    with pytest.raises(ValueError, match="does not fit"):
        quantise_counts(np.ones(1 << 16, int))


@pytest.mark.parametrize("mode", [predict.RAW, predict.LEFT, predict.UP, predict.PLANAR])
def test_prediction_modes_invert(mode):
    x = random_walk((16, 24), seed=mode)
    r = predict.residual(x, mode)
    assert np.abs(r).max() <= predict.alphabet_radius(mode, 127)
    np.testing.assert_array_equal(predict.reconstruct(r, mode), x)


def test_predictive_beats_histogram_on_correlated_latents():
    walk = random_walk((50, 4, 16, 32))  # correlated along width
    noise = np.random.default_rng(1).integers(-4, 5, (50, 2, 16, 32))
    latents = list(np.concatenate([walk, noise], axis=1))
    predictive = fit_tables(latents, 127, predictive=True)
    plain = fit_tables(latents, 127, predictive=False)
    assert predictive.modes == 4 and plain.modes == 1
    sizes = [(len(encode(x, predictive)), len(encode(x, plain))) for x in latents[:5]]
    assert all(p < 0.8 * h for p, h in sizes)


@pytest.mark.parametrize("radius", [3, ESCAPE, ESCAPE + 1, 508])
def test_escape_split_inverts(radius):
    values = np.arange(-radius, radius + 1)
    core, tail = split_escapes(values, radius)
    escaped = np.abs(values) > min(ESCAPE, radius)
    assert core.max() < (2 * radius + 1 if radius <= ESCAPE else 2 * ESCAPE + 3) and core.min() == 0
    assert tail.size == escaped.sum() and (tail.size == 0 or tail.max() == radius - ESCAPE - 1)
    np.testing.assert_array_equal(join_escapes(core.copy(), tail, radius), values)


def test_extreme_latents_round_trip_through_escapes():
    """Full-scale values in every mode: many escapes, largest tails, both signs."""
    rng = np.random.default_rng(5)
    latents = [rng.choice([-127, -40, -16, -15, 0, 15, 16, 90, 127], (4, 12, 10)) for _ in range(6)]
    latents += list(random_walk((6, 4, 12, 10), seed=7, step=40))
    tables = fit_tables(latents, 127, predictive=True)
    assert all(t.size for per_c in tables.tails for t in per_c)
    for x in latents[::3]:
        np.testing.assert_array_equal(decode(encode(x, tables), x.shape, tables), x)


def test_round_trip_and_information_bound():
    latents = list(random_walk((20, 3, 24, 40), seed=3))
    tables = fit_tables(latents, 127, predictive=True)
    for x in latents[:3]:
        blob = encode(x, tables)
        np.testing.assert_array_equal(decode(blob, x.shape, tables), x)
        ideal = ideal_bits(x, tables)
        assert ideal <= 8 * len(blob) <= ideal * 1.01 + 64  # ANS overhead: a word or two


def ideal_bits(x, tables):
    """What the tables' own probabilities say the latents cost, with the encoder's choice of
    mode per channel and 2 bits per channel to send it."""
    state, bits = Contexts(x.shape[1:]), 2.0 * tables.channels
    for c in tables.order:
        k, _, _ = _contexts(tables, c, state)
        costs = []
        for m in range(tables.modes):
            flat = predict.residual(x[c], m).ravel() + tables.radius(m)
            costs.append((float(sum(tables.cost(c, m, j)[flat[k == j]].sum()
                                    for j in range(len(tables.thresholds[c]) + 1))), m))
        cost, m = min(costs)
        bits += cost
        state.add(predict.residual(x[c], m))
    return bits


def test_exact_words_for_fixed_input():
    """Pins the entropy format: these words must never change for this input and table."""
    tables = EntropyTables(
        3,
        (((quantise_counts(np.array([1, 2, 8, 20, 8, 2, 1])),),),
         ((quantise_counts(np.array([1, 2, 8, 30, 8, 2, 1])),
           quantise_counts(np.array([2, 3, 4, 5, 4, 3, 2]))),)),
        thresholds=(np.zeros(0, np.int64), np.array([2])), order=(1, 0))
    x = np.array([[[0, 1, -1, 0], [2, 0, 0, -3]], [[0, 1, 2, 2], [1, 1, 0, -1]]], dtype=np.int32)
    blob = encode(x, tables)
    assert np.frombuffer(blob, "<u4").tolist() == EXACT_WORDS
    np.testing.assert_array_equal(decode(blob, x.shape, tables), x)


EXACT_WORDS = [2824537163, 20659876]


def test_exact_words_with_escapes():
    """Pins the escape path: core symbols first, then the channel's tails."""
    core = quantise_counts(np.r_[3, np.exp(-np.abs(np.arange(-15, 16)) / 4) * 100, 3].astype(int))
    tables = EntropyTables(20, (((core,),),), tails=((quantise_counts(np.array([5, 4, 3, 2, 1])),),))
    tables.validate()
    x = np.array([[[0, 3, -16, 20], [-20, 15, 17, -1]]], dtype=np.int32)
    blob = encode(x, tables)
    assert np.frombuffer(blob, "<u4").tolist() == [754993673, 3817477631, 458254]
    np.testing.assert_array_equal(decode(blob, x.shape, tables), x)


def test_contexts_follow_local_energy_of_decoded_channels():
    m = np.zeros((5, 5), int)
    m[2, 2] = 3
    e = local_energy(m)
    assert e[1:4, 1:4].tolist() == [[3] * 3] * 3 and e.sum() == 27
    latents = [np.concatenate([random_walk((1, 16, 16), seed=s), random_walk((1, 16, 16), seed=s)])
               for s in range(8)]
    tables = fit_tables(latents, 127, predictive=True)
    assert len(tables.thresholds[tables.order[0]]) == 0  # nothing decoded before: one context
    assert len(tables.thresholds[tables.order[1]]) > 0


def test_corrupt_payloads_raise():
    latents = list(random_walk((4, 2, 8, 8)))
    tables = fit_tables(latents, 127, predictive=True)
    blob = encode(latents[0], tables)
    with pytest.raises(BitstreamError, match="whole number of words"):
        decode(blob[:-1], (2, 8, 8), tables)
    with pytest.raises(BitstreamError):
        decode(blob + b"\x01\x00\x00\x00", (2, 8, 8), tables)
    with pytest.raises(BitstreamError, match="latent channels"):
        decode(blob, (3, 8, 8), tables)


def test_tables_save_load_and_pickle(tmp_path):
    import pickle

    tables = fit_tables(list(random_walk((4, 2, 8, 8))), 127, predictive=True)
    tables.model(0, 0, 0)  # populate the constriction cache, which must not be pickled
    tables.save(tmp_path / "t.npz")
    loaded = EntropyTables.load(tmp_path / "t.npz")
    assert loaded.digest() == tables.digest() and loaded == loaded
    for c in range(tables.channels):
        for m in range(tables.modes):
            for a, b in zip(loaded.frequencies[c][m], tables.frequencies[c][m]):
                np.testing.assert_array_equal(a, b)
    assert pickle.loads(pickle.dumps(tables)).digest() == tables.digest()


def test_tables_and_headers_have_value_semantics():
    from walloc_io.bitstream import Header

    latents = list(random_walk((4, 2, 8, 8)))
    a, b = fit_tables(latents, 127, predictive=True), fit_tables(latents, 127, predictive=True)
    other = fit_tables(latents[:2], 127, predictive=True)
    assert a == b and a != other and len({a, b, other}) == 2
    h = Header("image", "predictive", "float32", "ab" * 16, 3, (16, 16), (0, 0), 12, (2, 2),
               np.array([[0.0, 1.0]] * 3))
    same = Header("image", "predictive", "float32", "ab" * 16, 3, (16, 16), (0, 0), 12, (2, 2),
                  np.array([[0.0, 1.0]] * 3))
    assert h == same and hash(h) == hash(same) and len({h, same}) == 1
