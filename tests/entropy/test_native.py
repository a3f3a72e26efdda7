"""The native latent coder of format 2: exact words, the Python reference, corrupt input."""

from __future__ import annotations

import numpy as np
import pytest

from walloc_io.entropy import EntropyTables, LatentCoder, fit_tables, quantise_counts
from walloc_io.errors import BitstreamError

from . import rans_reference


def random_walk(shape, seed=0, step=3, limit=127):
    rng = np.random.default_rng(seed)
    return np.clip(np.cumsum(rng.integers(-step, step + 1, shape), axis=-1), -limit, limit)


def fixed_tables() -> EntropyTables:
    return EntropyTables(
        3,
        (((quantise_counts(np.array([1, 2, 8, 20, 8, 2, 1])),),),
         ((quantise_counts(np.array([1, 2, 8, 30, 8, 2, 1])),
           quantise_counts(np.array([2, 3, 4, 5, 4, 3, 2]))),)),
        thresholds=(np.zeros(0, np.int64), np.array([2])), order=(1, 0))


FIXED = np.array([[[0, 1, -1, 0], [2, 0, 0, -3]], [[0, 1, 2, 2], [1, 1, 0, -1]]], dtype=np.int32)
EXACT_WORDS = [18699, 5, 60353, 103, 57463, 59013]


def test_exact_words_for_fixed_input():
    """Pins format 2: these words must never change for this input and these tables."""
    coder = LatentCoder(fixed_tables())
    words = coder.encode(FIXED)
    assert np.frombuffer(words, "<u2").tolist() == EXACT_WORDS
    assert words == rans_reference.encode(FIXED, fixed_tables())
    np.testing.assert_array_equal(coder.decode(words, FIXED.shape), FIXED)


def test_exact_words_with_escapes():
    core = quantise_counts(np.r_[3, np.exp(-np.abs(np.arange(-15, 16)) / 4) * 100, 3].astype(int))
    tables = EntropyTables(20, (((core,),),), tails=((quantise_counts(np.array([5, 4, 3, 2, 1])),),))
    x = np.array([[[0, 3, -16, 20], [-20, 15, 17, -1]]], dtype=np.int32)
    words = LatentCoder(tables).encode(x)
    assert np.frombuffer(words, "<u2").tolist() == EXACT_ESCAPE_WORDS
    assert words == rans_reference.encode(x, tables)
    np.testing.assert_array_equal(LatentCoder(tables).decode(words, x.shape), x)


EXACT_ESCAPE_WORDS = [36298, 38, 51583, 484, 65402, 63066, 65144]


def _cases():
    walk2d = list(random_walk((12, 3, 10, 14), seed=1))
    extreme = [np.random.default_rng(s).choice([-127, -40, -16, -15, 0, 15, 16, 90, 127], (3, 6, 7))
               for s in range(6)]
    walk1d = list(random_walk((8, 4, 90), seed=2, step=20))
    return [("2d-predictive", walk2d, True, 0), ("escapes", extreme + walk2d[:4], True, 0),
            ("1d-predictive", walk1d, True, 0), ("histogram", walk2d, False, 0),
            ("1d-histogram", walk1d, False, 0), ("2d-contextual", walk2d, True, 8),
            ("1d-contextual", walk1d, True, 3), ("contextual-escapes", extreme + walk2d[:4], True, 40)]


@pytest.mark.parametrize("name, latents, predictive, weight", _cases(),
                         ids=[c[0] for c in _cases()])
def test_kernel_matches_the_python_reference(name, latents, predictive, weight):
    tables = fit_tables(latents, 127, predictive=predictive, neighbour_weight=weight)
    assert tables.neighbour_weight == weight
    coder = LatentCoder(tables)
    for x in latents[::3]:
        words = coder.encode(x)
        assert words == rans_reference.encode(x, tables)
        np.testing.assert_array_equal(coder.decode(words, x.shape), x)


def test_size_close_to_the_tables_information_content():
    latents = list(random_walk((20, 3, 24, 40), seed=3))
    tables = fit_tables(latents, 127, predictive=True)
    coder = LatentCoder(tables)
    for x in latents[:3]:
        ops = rans_reference.operations(x, tables)
        ideal = sum(16 - np.log2(f) for _, f in ops)
        assert ideal <= 8 * len(coder.encode(x)) <= ideal * 1.005 + 64  # the two final states


def test_batched_decode_equals_single_and_names_the_corrupt_one():
    latents = list(random_walk((6, 3, 8, 12), seed=4))
    coder = LatentCoder(fit_tables(latents, 127, predictive=True))
    words = [coder.encode(x) for x in latents]
    np.testing.assert_array_equal(coder.decode_many(words, latents[0].shape), np.stack(latents))
    broken = words[:2] + [words[2][:-2]] + words[3:]
    with pytest.raises(BitstreamError, match="payload 2:"):
        coder.decode_many(broken, latents[0].shape)
    _, codes = coder.try_decode_many(broken, latents[0].shape)
    assert [c != 0 for c in codes] == [False, False, True, False, False, False]


def test_unaligned_and_non_bytes_buffers_decode():
    x = random_walk((3, 8, 12), seed=5)
    coder = LatentCoder(fit_tables([x], 127, predictive=True))
    words = coder.encode(x)
    odd = memoryview(b"\0" + words)[1:]
    np.testing.assert_array_equal(coder.decode(odd, x.shape), x)
    np.testing.assert_array_equal(coder.decode(bytearray(words), x.shape), x)


@pytest.mark.parametrize("shape, weight, step", [((3, 8, 12), 0, 3), ((3, 8, 12), 8, 3),
                                                 ((3, 200), 4, 9)],
                         ids=["predictive", "contextual", "1d-contextual"])
def test_corrupt_payloads_raise_and_never_crash(shape, weight, step):
    x = random_walk(shape, seed=6, step=step)
    coder = LatentCoder(fit_tables([x, random_walk(shape, seed=7, step=step)], 127,
                                   predictive=True, neighbour_weight=weight))
    words = coder.encode(x)
    for bad in (b"", words[:1], words[:-1], words[:-2], words + b"\0\0", words[:6]):
        with pytest.raises(BitstreamError, match="corrupt|cannot hold"):
            coder.decode(bad, x.shape)
    rng = np.random.default_rng(0)
    outcomes = set()
    for _ in range(300):
        b = bytearray(words)
        b[rng.integers(len(b))] ^= 1 << int(rng.integers(8))
        try:
            y = coder.decode(bytes(b), x.shape)
            outcomes.add("decoded")
            assert np.abs(y).max() <= 127
        except BitstreamError:
            outcomes.add("error")
    assert "error" in outcomes
    with pytest.raises(BitstreamError, match="latent channels"):
        coder.decode(words, (4, *shape[1:]))


def test_payloads_too_short_for_their_shape_are_refused_before_decoding():
    """Work is bounded by the payload: every symbol costs >= the tables' floor."""
    x = random_walk((3, 8, 12), seed=10)
    coder = LatentCoder(fit_tables([x], 127, predictive=True))
    words = coder.encode(x)
    huge = (3, 4096, 4096)
    assert coder.capacity(len(words)) < 3 * 4096 * 4096
    with pytest.raises(BitstreamError, match="cannot hold"):
        coder.decode(words, huge)
    _, codes = coder.try_decode_many([words, words], huge)
    assert codes == [100, 100]


def test_out_of_range_latents_are_refused():
    x = random_walk((3, 8, 12), seed=8)
    coder = LatentCoder(fit_tables([x], 127, predictive=True))
    with pytest.raises(BitstreamError, match="range"):
        coder.encode(np.full((3, 8, 12), 128, dtype=np.int32))


def test_coder_pickles():
    import pickle

    x = random_walk((3, 8, 12), seed=9)
    coder = LatentCoder(fit_tables([x], 127, predictive=True))
    clone = pickle.loads(pickle.dumps(coder))
    assert clone.encode(x) == coder.encode(x)


def test_contextual_model_codes_correlated_latents_in_fewer_bits():
    """Latents whose spread varies along the channel itself (what the box energy of the
    other channels cannot see) cost fewer bits when the contexts see the causal neighbours."""
    def item(seed):
        r = np.random.default_rng(seed)
        scale = np.repeat(r.choice([0.3, 6.0], (2, 64)), 16, axis=1)  # bursts in time
        return np.clip(np.rint(r.laplace(0, scale)), -60, 60).astype(np.int32)
    train, test = [item(s) for s in range(12)], [item(100 + s) for s in range(4)]
    plain = LatentCoder(fit_tables(train, 63, predictive=True))
    contextual = LatentCoder(fit_tables(train, 63, predictive=True, neighbour_weight=8))
    bits = {name: sum(len(c.encode(x)) for x in test) for name, c in
            (("plain", plain), ("contextual", contextual))}
    assert bits["contextual"] < 0.93 * bits["plain"], bits  # measured: 0.90
    for x in test:
        np.testing.assert_array_equal(contextual.decode(contextual.encode(x), x.shape), x)


def test_contextual_tables_round_trip_and_keep_old_digests(tmp_path):
    """The weight is saved with the tables; tables without one keep format 2's digest."""
    latents = list(random_walk((6, 3, 8, 12), seed=12))
    plain = fit_tables(latents, 127, predictive=True)
    contextual = fit_tables(latents, 127, predictive=True, neighbour_weight=8)
    assert "nbw" not in plain._arrays() and plain.digest() != contextual.digest()
    contextual.save(tmp_path / "t.npz")
    loaded = EntropyTables.load(tmp_path / "t.npz")
    assert loaded.neighbour_weight == 8 and loaded == contextual
    x = latents[0]
    words = LatentCoder(contextual).encode(x)
    np.testing.assert_array_equal(LatentCoder(loaded).decode(words, x.shape), x)
    with pytest.raises(ValueError, match="predictive"):
        fit_tables(latents, 127, predictive=False, neighbour_weight=8)
