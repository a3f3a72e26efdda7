#!/usr/bin/env python
"""Error-bounded compression of float fields: walloc-io vs SZ3, ZFP and JPEG 2000, one run.

    python scripts/prepare_data.py fields          # data/fields/heldout (never trained on)
    python benchmarks/bench_science.py --out benchmarks/results/science.md

For every held-out field and every bound (1e-2, 1e-3, 1e-4 of the field's finite range):

- walloc-io: the chunk record of ``encode_chunk(codec, field, nan="mask",
  max_abs_error=eps)`` (latents + residual + NaN mask: everything needed to decode it);
- SZ3 (imagecodecs, ABS mode) and ZFP (imagecodecs, fixed accuracy) on the field with its
  NaN filled (the same smooth fill walloc-io uses), plus the NaN mask as zlib(packbits), plus
  16 bytes of shape/dtype for SZ3 (its stream does not carry them);
- JPEG 2000: the field quantised to a uint16 grid of step 2 (eps - ulp) (error <= eps by
  construction, the cast to float32 included), coded losslessly (reversible,
  imagecodecs/OpenJPEG), plus the mask; where the grid needs more than 16 bits, no row.

Columns: compression ratio (raw float bytes / stored bytes), bits per value, max error / eps
over finite values, violations (values beyond eps), PSNR over the finite range, encode and
decode MB/s (raw bytes per second, single-threaded). For walloc-io the stored bytes are split
into latents and residual. Summary: per bound, the geometric mean ratio of each method and
walloc-io's ratio over SZ3's per field.
"""

from __future__ import annotations

import argparse
import math
import struct
import time
import zlib
from pathlib import Path

import numpy as np
from report import emit

BOUNDS = (1e-2, 1e-3, 1e-4)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def mask_bytes(finite: np.ndarray) -> int:
    return 0 if finite.all() else len(zlib.compress(np.packbits(~finite).tobytes(), 9))


def walloc(codec, x: np.ndarray, eps: float):
    from walloc_io import bitstream
    from walloc_io.codecs.chunk import decode_chunk, encode_chunk, unpack

    t_enc, record = timed(lambda: encode_chunk(codec, x, nan="mask", max_abs_error=eps))
    t_dec, y = timed(lambda: decode_chunk(codec, record))
    header, payload = bitstream.unpack(unpack(record).streams[0])
    return len(record), y, t_enc, t_dec, {"latents": len(payload),
                                          "residual": len(header.residual or b"")}


def sz3(x: np.ndarray, filled: np.ndarray, finite: np.ndarray, eps: float):
    import imagecodecs

    t_enc, blob = timed(lambda: imagecodecs.sz3_encode(filled, mode="abs", abs=eps))
    t_dec, y = timed(lambda: imagecodecs.sz3_decode(blob, filled.shape, filled.dtype))
    return len(blob) + 16 + mask_bytes(finite), y, t_enc, t_dec, {}


def zfp(x: np.ndarray, filled: np.ndarray, finite: np.ndarray, eps: float):
    import imagecodecs

    t_enc, blob = timed(lambda: imagecodecs.zfp_encode(filled, mode="accuracy", level=eps))
    t_dec, y = timed(lambda: imagecodecs.zfp_decode(blob))
    return len(blob) + mask_bytes(finite), y, t_enc, t_dec, {}


def j2k(x: np.ndarray, filled: np.ndarray, finite: np.ndarray, eps: float):
    import imagecodecs

    # the grid's half-step leaves room for the final cast to the field's dtype
    ulp = float(np.spacing(np.abs(filled).max().astype(x.dtype)))
    low, step = float(filled.min()), 2 * (eps - ulp)
    if step <= 0 or (float(filled.max()) - low) / step >= 65535:
        return None

    def enc():
        q = np.rint((filled.astype(np.float64) - low) / step).astype(np.uint16)
        return imagecodecs.jpeg2k_encode(q, level=0, reversible=True)

    t_enc, blob = timed(enc)
    t_dec, q = timed(lambda: imagecodecs.jpeg2k_decode(blob))
    y = (low + q.astype(np.float64) * step).astype(x.dtype)
    return len(blob) + len(struct.pack("<dd", low, step)) + mask_bytes(finite), y, t_enc, t_dec, {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fields", type=Path, default=Path("data/fields/heldout"))
    parser.add_argument("--codec", default="field-16x")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import torch

    import walloc_io
    from walloc_io.signal import fill_nan

    torch.set_num_threads(1)
    codec = walloc_io.load_codec(args.codec, device="cpu")
    files = sorted(args.fields.glob("*.npy"))[: args.limit]
    if not files:
        raise SystemExit(f"no .npy fields in {args.fields}: python scripts/prepare_data.py fields")
    rows = []
    for f in files:
        x = np.load(f)
        if x.ndim == 2:
            x = x[None]
        finite = np.isfinite(x)
        filled = fill_nan(x)[0]
        values = x[finite].astype(np.float64)
        span = float(values.max() - values.min())
        for rel in BOUNDS:
            eps = rel * span
            methods = {"walloc-io": lambda: walloc(codec, x, eps),  # noqa: B023
                       "SZ3": lambda: sz3(x, filled, finite[0], eps),  # noqa: B023
                       "ZFP": lambda: zfp(x, filled, finite[0], eps),  # noqa: B023
                       "JPEG 2000": lambda: j2k(x, filled, finite[0], eps)}  # noqa: B023
            for name, run in methods.items():
                result = run()
                if result is None:
                    continue
                size, y, t_enc, t_dec, parts = result
                y = np.asarray(y).reshape(x.shape)
                err = np.abs(y[finite].astype(np.float64) - values)
                mse = float(np.mean(err ** 2))
                rows.append({"field": f.stem, "rel": rel, "method": name,
                             "ratio": x.nbytes / size, "bits": 8 * size / x.size,
                             "max_err": float(err.max()) / eps,
                             "violations": int((err > eps).sum()),
                             "psnr": 10 * math.log10(span ** 2 / mse) if mse > 0 else math.inf,
                             "enc": x.nbytes / 1e6 / t_enc, "dec": x.nbytes / 1e6 / t_dec,
                             "nan": float((~finite).mean()), **parts})
        print(f"  {f.stem}: done")
    lines = [f"# bench_science: {codec.config.name} ({codec.fingerprint[:12]}) vs SZ3, ZFP, "
             f"JPEG 2000 on {len(files)} held-out fields", "",
             "| field | NaN | bound | method | ratio | bits/value | max err / eps | violations "
             "| PSNR dB | enc MB/s | dec MB/s | latents / residual bytes |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        split = f"{r['latents']} / {r['residual']}" if "latents" in r else ""
        lines.append(f"| {r['field']} | {r['nan']:.0%} | {r['rel']:g} | {r['method']} | "
                     f"{r['ratio']:.2f} | {r['bits']:.2f} | {r['max_err']:.3f} | "
                     f"{r['violations']} | {r['psnr']:.1f} | {r['enc']:.1f} | {r['dec']:.1f} | "
                     f"{split} |")
    lines += ["", "| bound | method | geometric-mean ratio | walloc-io / method (geo-mean) | "
              "walloc-io ahead on | violations |", "|---|---|---|---|---|---|"]
    for rel in BOUNDS:
        ours = {r["field"]: r["ratio"] for r in rows if r["rel"] == rel and r["method"] == "walloc-io"}
        for method in ("walloc-io", "SZ3", "ZFP", "JPEG 2000"):
            sel = [r for r in rows if r["rel"] == rel and r["method"] == method]
            if not sel:
                continue
            geo = math.exp(np.mean([math.log(r["ratio"]) for r in sel]))
            rel_ratio = math.exp(np.mean([math.log(ours[r["field"]] / r["ratio"]) for r in sel]))
            ahead = sum(ours[r["field"]] >= r["ratio"] for r in sel)
            lines.append(f"| {rel:g} | {method} | {geo:.2f} | {rel_ratio:.3f} | "
                         f"{ahead}/{len(sel)} | {sum(r['violations'] for r in sel)} |")
    latent = sum(r.get("latents", 0) for r in rows)
    resid = sum(r.get("residual", 0) for r in rows)
    lines += ["", f"walloc-io bytes over all fields and bounds: latents {latent}, residual "
              f"{resid} ({resid / max(1, latent + resid):.0%} residual)"]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
