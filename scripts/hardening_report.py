#!/usr/bin/env python
"""Re-run each row of the hardening table: what a hostile input does now, its time and peak RSS.

    python scripts/hardening_report.py --out benchmarks/results/hardening.md

Every row runs in a fresh process (so peak RSS is that row's own), with the rgb-16x preset.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

PRELUDE = """
import dataclasses, json, resource, struct, sys, time, zlib
import numpy as np
import walloc_io
from walloc_io import bitstream
from walloc_io.codecs import chunk
codec = walloc_io.load_codec("rgb-16x", device="cpu")
x = np.random.default_rng(0).integers(0, 256, (3, 64, 64), dtype=np.uint8)
blob = codec.encode(x)
header, payload = bitstream.unpack(blob)
def forge(payload=payload, **f):
    return bitstream.pack(dataclasses.replace(header, **f), payload)
{setup}
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
"""

EPILOGUE = """
    outcome = "no error"
except Exception as exc:
    outcome = f"{type(exc).__name__}: {exc}"
print(json.dumps({"outcome": outcome, "seconds": time.perf_counter() - start,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024}))
"""

ROWS = [
    ("payload empty (0 words), CRC recomputed", "codec.decode(forge(b''))"),
    ("61-byte stream claiming 4096x4096",
     "codec.decode(forge(payload[:8], shape=(4096, 4096), latent_shape=(512, 512)))"),
    ("claiming 2**30 elements",
     "codec.decode(forge(shape=(18919, 18919), padding=(1, 1), latent_shape=(2365, 2365)))"),
    ("claiming 2**33 elements",
     "codec.decode(forge(shape=(53510, 53510), padding=(2, 2), latent_shape=(6689, 6689)))"),
    ("huge claimed shape, original payload",
     "codec.decode(forge(shape=(8192, 8192), latent_shape=(1024, 1024)))"),
    ("float record, NaN-mask flag, zlib bomb (800 MB inflated) as the mask",
     "chunk.unpack(record)",
     "bomb = zlib.compress(bytes(800_000_000), 9)\n"
     "head = chunk._HEAD.pack(chunk.MAGIC, chunk.VERSION, chunk._MASK, 3, 4)"
     " + struct.pack('<4I', 1, 3, 64, 64)\n"
     "record = head + struct.pack('<II', 1, 4) + b'WLOC' + struct.pack('<I', len(bomb)) + bomb\n"
     "del bomb"),
    ("forged normalisation (CRC recomputed)",
     "fb = codec.encode(x.astype(np.float32))\n"
     "    h2, p2 = bitstream.unpack(fb)\n"
     "    bad = dataclasses.replace(h2, normalisation=np.array([[0, 1e300]] * 3))\n"
     "    codec.decode(bitstream.pack(bad, p2))"),
    ("encode(sample_rate=-1)", "codec.encode(x, sample_rate=-1)"),
    ("encode(sample_rate=2**32)", "codec.encode(x, sample_rate=2**32)"),
    ("encode(sample_rate=44100.5)", "codec.encode(x, sample_rate=44100.5)"),
    ("bfloat16 tensor", "import torch\n    b16 = codec.encode(torch.rand(3, 64, 64).bfloat16())\n"
     "    print(walloc_io.read_header(b16).dtype, file=sys.stderr)"),
    ("sparse tensor", "import torch\n    codec.encode(torch.rand(3, 64, 64).to_sparse())"),
    ("meta tensor", "import torch\n    codec.encode(torch.empty(3, 64, 64, device='meta'))"),
    ("load_codec(None)", "walloc_io.load_codec(None)"),
    ("load_codec(3)", "walloc_io.load_codec(3)"),
    ("load_codec('rgb-16x', 'tpu')", "walloc_io.load_codec('rgb-16x', 'tpu')"),
    ("numcodecs: empty batch (0, 3, 64, 64)",
     "import numcodecs\n    c = numcodecs.get_codec({'id': 'walloc', 'preset': 'rgb-16x'})\n"
     "    print(c.decode(c.encode(np.zeros((0, 3, 64, 64), np.uint8))).shape, file=sys.stderr)"),
    ("Zarr float array, fill_value=nan, nan='raise'",
     "import zarr\n    zarr.create_array(zarr.storage.MemoryStore(), shape=(2, 3, 64, 64), "
     "chunks=(1, 3, 64, 64), dtype='float32', fill_value=np.nan, "
     "serializer={'name': 'walloc', 'configuration': {'preset': 'rgb-16x'}})"),
    ("sharded, inner chunks split the channels",
     "import zarr\n    zarr.create_array(zarr.storage.MemoryStore(), shape=(2, 3, 512, 768), "
     "chunks=(1, 1, 256, 256), shards=(2, 3, 512, 768), dtype='uint8', "
     "serializer={'name': 'walloc', 'configuration': {'preset': 'rgb-16x'}})"),
    ("int16 image with values 0..255 (a photo crop)",
     "y = codec.decode(codec.encode(photo.astype(np.int16)))\n"
     "    print('mean error', round(float(np.abs(y.astype(int) - photo).mean()), 2), 'vs uint8',"
     " round(float(np.abs(codec.decode(codec.encode(photo)).astype(int) - photo).mean()), 2),"
     " file=sys.stderr)",
     "from importlib.resources import files\nfrom walloc_io.media import read_signal\n"
     "photo = read_signal(files('walloc_io').joinpath('samples', 'kleiber.png')).data[:, :256, :256]"),
]

CLI = [
    ("walloc convert DIR OUT --workers 0", ["convert", "{tmp}/src", "{tmp}/out.zarr", "--workers", "0"]),
    ("walloc convert DIR OUT --workers -1", ["convert", "{tmp}/src", "{tmp}/out.zarr", "--workers", "-1"]),
    ("walloc convert where every item is bad", ["convert", "{tmp}/src", "{tmp}/out.zarr", "--workers", "1"]),
    ("walloc encode --device tpu", ["encode", "{tmp}/src/a.png", "{tmp}/a.wlc", "--device", "tpu"]),
    ("walloc decode x.wlc missing_dir/out.png", ["decode", "{tmp}/x.wlc", "{tmp}/missing/out.png"]),
]


def run_row(code: str, setup: str = "") -> dict:
    script = PRELUDE.replace("{setup}", setup) + "    " + code + EPILOGUE
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    try:
        result = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"outcome": f"crashed: {out.stderr.strip()[-300:]}", "seconds": float("nan"),
                "rss_mb": float("nan"), "growth_mb": float("nan")}
    if out.stderr.strip() and result["outcome"] == "no error":
        result["outcome"] = f"ok: {out.stderr.strip().splitlines()[-1]}"
    return result


def run_cli(args: list[str], tmp: Path) -> str:
    import time

    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "walloc_io.cli", *[a.format(tmp=tmp) for a in args]],
                         capture_output=True, text=True)
    lines = out.stderr.strip().splitlines()
    tail = lines[-1] if lines else out.stdout.strip().splitlines()[-1]
    return f"exit {out.returncode}, {len(lines)} stderr line(s): {tail} ({time.perf_counter() - start:.1f} s)"


def main() -> None:
    import tempfile

    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lines = ["| input | now | time | peak RSS (growth) |", "|---|---|---|---|"]
    for name, code, *setup in ROWS:
        r = run_row(code, *setup)
        outcome = r["outcome"].replace("|", "\\|")[:220]
        lines.append(f"| {name} | {outcome} | {r['seconds']:.3f} s | {r['rss_mb']:.0f} MB "
                     f"(+{r['growth_mb']:.0f}) |")
        print(lines[-1], flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "src").mkdir()
        (t / "src" / "a.png").write_bytes(b"not a picture")
        import walloc_io

        codec = walloc_io.load_codec("rgb-16x", device="cpu")
        (t / "x.wlc").write_bytes(codec.encode(np.zeros((3, 64, 64), np.uint8)))
        lines += ["", "| command | now |", "|---|---|"]
        for name, cli in CLI:
            lines.append(f"| `{name}` | {run_cli(cli, t).replace('|', '/')} |")
            print(lines[-1], flush=True)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
