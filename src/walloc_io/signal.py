"""Validate a signal and map it to ``[-1/2, 1/2]`` (and back). Imports no torch.

uint8 and int16 use their dtype's full range (nothing stored). uint16 and floats are
normalised per channel to their own min..max, and those two numbers per channel travel in
the header; so is int16 whose values span less than 1/16 of the dtype's range (an image
stored as int16 0..255 would otherwise use 1/256 of the codec's range: mean error ~430).
NaN and Inf are rejected: a learned lossy codec has no faithful way to keep them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError

RANGE_DTYPES = {"uint8": (0.0, 255.0), "int16": (-32768.0, 65535.0)}
NARROW_INT16 = 4096  # int16 spanning fewer values than this is normalised per channel
AFFINE_DTYPES = ("uint16", "float32", "float64")


@dataclass(frozen=True)
class Prepared:
    data: np.ndarray  # float32 (C, *padded) in [-1/2, 1/2]; uint8 as is with raw_uint8
    dtype: str
    shape: tuple[int, ...]  # signal axes before padding
    padding: tuple[int, ...]
    normalisation: np.ndarray | None  # (C, 2) offset, scale


def check_sample_rate(rate) -> int:
    """``sample_rate`` as the header stores it: a whole number of Hz in ``0 .. 2**32 - 1``
    (0: not applicable), or an :class:`InputError`."""
    if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, np.integer, float,
                                                                    np.floating)):
        raise InputError(f"sample_rate must be a whole number of Hz (0 .. 2**32 - 1), "
                         f"got {type(rate).__name__} {rate!r}")
    if isinstance(rate, (float, np.floating)) and not float(rate).is_integer():
        raise InputError(f"sample_rate must be a whole number of Hz, got {rate!r}")
    if not 0 <= rate < 2 ** 32:
        raise InputError(f"sample_rate must be in 0 .. 2**32 - 1 Hz, got {rate!r}")
    return int(rate)


def as_numpy(x) -> np.ndarray:
    """A numpy array or a dense torch tensor (any device; bfloat16 becomes float32, which
    holds it exactly) as numpy. Sparse, meta and complex tensors are an :class:`InputError`."""
    if isinstance(x, np.ndarray):
        return x
    if type(x).__module__.startswith("torch"):
        if str(getattr(x, "layout", "")) != "torch.strided":
            raise InputError(f"expected a dense (strided) tensor, got layout {x.layout}: "
                             "call .to_dense() first")
        if x.device.type == "meta":
            raise InputError("a meta tensor has no data to encode")
        if x.is_complex():
            raise InputError(f"complex tensors cannot be coded (dtype {x.dtype})")
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        return x.detach().cpu().numpy()
    raise InputError(f"expected a numpy array or torch tensor, got {type(x).__name__}")


def prepare(x, channels: int, ndim: int, factor: int, raw_uint8: bool = False) -> Prepared:
    """Check ``x`` (``(C, H, W)`` or ``(C, T)``), normalise it and pad to multiples of factor.

    ``raw_uint8``: uint8 signals are only padded (``data`` stays uint8) for a consumer that
    normalises them itself with :func:`unit_uint8`'s formula (the native analysis kernel).
    """
    x = as_numpy(x)
    layout = "(C, H, W)" if ndim == 2 else "(C, T)"
    if x.ndim != ndim + 1:
        raise InputError(f"expected a {ndim + 1}-d array {layout}, got shape {x.shape}")
    if x.size == 0:
        raise InputError(f"empty signal of shape {x.shape}")
    if x.shape[0] != channels:
        raise InputError(f"codec expects {channels} channels, got {x.shape[0]} (shape {x.shape}; "
                         f"channels come first: {layout})")
    dtype = x.dtype.name
    if dtype not in RANGE_DTYPES and dtype not in AFFINE_DTYPES:
        raise InputError(f"unsupported dtype {dtype}; use one of "
                         f"{sorted([*RANGE_DTYPES, *AFFINE_DTYPES])}")
    if any(n < factor for n in x.shape[1:]):
        raise InputError(f"signal axes {x.shape[1:]} too small: each needs >= {factor} samples")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise InputError("signal contains NaN or Inf")
    data, norm = (x, None) if raw_uint8 and dtype == "uint8" else _normalise(x, dtype)
    padding = tuple(-n % factor for n in x.shape[1:])
    if any(padding):
        data = np.pad(data, [(0, 0)] + [(0, p) for p in padding], mode="symmetric")
    out_dtype = np.uint8 if data.dtype == np.uint8 else np.float32
    return Prepared(np.ascontiguousarray(data, dtype=out_dtype), dtype, x.shape[1:], padding, norm)


def unit_uint8(data: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in ``[-1/2, 1/2]``: the normalisation :func:`prepare` applies."""
    low, span = RANGE_DTYPES["uint8"]
    return (data.astype(np.float32) - low) / span - 0.5


def _normalise(x: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray | None]:
    if dtype == "uint8":
        return unit_uint8(x), None
    if dtype == "int16" and int(x.max()) - int(x.min()) >= NARROW_INT16:
        low, span = RANGE_DTYPES[dtype]
        return (x.astype(np.float32) - low) / span - 0.5, None
    axes = tuple(range(1, x.ndim))
    low = x.min(axis=axes).astype(np.float64)
    span = x.max(axis=axes).astype(np.float64) - low
    if not np.all(np.isfinite(span)):
        raise InputError("signal range overflows float64")
    shape = (-1,) + (1,) * (x.ndim - 1)
    safe = np.where(span == 0, 1.0, span)  # a constant channel is stored exactly: span 0
    data = (x.astype(np.float64) - low.reshape(shape)) / safe.reshape(shape) - 0.5
    return data.astype(np.float32), np.stack([low, span], axis=1)


def restore(y: np.ndarray, dtype: str, shape: tuple[int, ...], norm: np.ndarray | None) -> np.ndarray:
    """Inverse of :func:`prepare` for a decoded ``(C, *padded)`` array in ``[-1/2, 1/2]``."""
    v = restore_float(y, dtype, shape, norm)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        v = np.clip(np.rint(v), info.min, info.max)
    return v.astype(dtype)


def restore_float(y: np.ndarray, dtype: str, shape: tuple[int, ...], norm: np.ndarray | None
                  ) -> np.ndarray:
    """:func:`restore` before rounding and the cast: float64 in the signal's units."""
    y = y[(slice(None),) + tuple(slice(0, n) for n in shape)].astype(np.float64) + 0.5
    low: float | np.ndarray  # fixed range: scalars; per-channel norm: arrays broadcast over the signal
    span: float | np.ndarray
    if norm is None:
        low, span = RANGE_DTYPES[dtype]
    else:
        bshape = (-1,) + (1,) * len(shape)
        low, span = norm[:, 0].reshape(bshape), norm[:, 1].reshape(bshape)
    return y * span + low


def fill_nan(x: np.ndarray) -> np.ndarray:
    """``x`` (``(C, *axes)``, float) with every NaN replaced by a smooth blend of the finite
    values around it (pull-push: finite means of a 2x pyramid, pushed back down), so masked
    regions (land in an ocean grid) cost the codec few bits. A channel without finite
    values becomes zeros. O(size), numpy only."""
    out = np.array(x, dtype=x.dtype, copy=True)
    for c in range(out.shape[0]):
        finite = np.isfinite(out[c])
        if finite.all():
            continue
        if not finite.any():
            out[c] = 0
            continue
        filled = _pull_push(np.where(finite, out[c], 0).astype(np.float64), finite.astype(np.float64))
        out[c][~finite] = filled[~finite].astype(out.dtype)
    return out


def _pull_push(v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted values ``v`` (zero where ``w`` is 0) -> every position filled."""
    if v.size == 1 or w.all():
        return v
    pad = [(0, n % 2) for n in v.shape]
    vp, wp = np.pad(v * w, pad), np.pad(w, pad)
    shape = [n // 2 for n in vp.shape]
    blocks = tuple(d for n in shape for d in (n, 2))
    sum_axes = tuple(range(1, 2 * v.ndim, 2))
    cv, cw = vp.reshape(blocks).sum(sum_axes), wp.reshape(blocks).sum(sum_axes)
    coarse = _pull_push(np.divide(cv, cw, out=np.zeros_like(cv), where=cw > 0),
                        np.minimum(cw, 1))
    up = coarse
    for axis in range(v.ndim):
        up = np.repeat(up, 2, axis=axis)
    up = up[tuple(slice(0, n) for n in v.shape)]
    return np.where(w > 0, v, up)
