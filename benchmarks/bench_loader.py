"""Samples per second into a training loop, four ways, in one run:

  (a) WaLLoC shards -> integer latents            (entropy decoding in the workers)
  (b) WaLLoC shards -> signals                    (entropy decoding in the workers, the decoder
                                                   network batched in the training process)
  (c) JPEG shards   -> decoded, bicubic-resized to the latent tensor's size
                       (3 x H/f x W/f with 3 (H/f)^2 = L (H/2^J)^2 values: the same count)
  (d) JPEG shards   -> decoded at full resolution

plus (0), the same WaLLoC shards with members passed through undecoded: the ceiling any
decoder can reach in this loader. All read real tar shards with webdataset through
``DataLoader(num_workers=W)``; the "training step" moves the batch to the device and
converts it to float (the model's cost is the same for every pipeline and is left out).
Items are ``--size`` crops of held-out photos.

    python benchmarks/bench_loader.py --images data/images/val --out benchmarks/results/loader.md
"""

from __future__ import annotations

import argparse
import io
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from report import emit


def crops(folder: Path, size: int, count: int, seed: int = 0) -> list[np.ndarray]:
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    images = [np.asarray(Image.open(p).convert("RGB")) for p in files]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        im = images[i % len(images)]
        y = rng.integers(0, im.shape[0] - size + 1)
        x = rng.integers(0, im.shape[1] - size + 1)
        out.append(np.ascontiguousarray(im[y:y + size, x:x + size]))
    return out


def write_shards(root: Path, items: list[np.ndarray], codec: str, quality: int) -> dict[str, list[str]]:
    import webdataset as wds
    from PIL import Image

    import walloc_io

    per = 128
    out: dict[str, list[str]] = {"wlc": [], "jpg": []}
    for kind in out:
        encoder = walloc_io.wds_encoder(codec) if kind == "wlc" else True
        pattern = str(root / f"{kind}-%04d.tar")
        with wds.ShardWriter(pattern, maxcount=per, encoder=encoder, verbose=0) as sink:
            for i, im in enumerate(items):
                if kind == "wlc":
                    value = im.transpose(2, 0, 1)
                else:
                    buf = io.BytesIO()
                    Image.fromarray(im).save(buf, format="JPEG", quality=quality)
                    value = buf.getvalue()
                sink.write({"__key__": f"{i:06d}", kind: value, "cls": i % 10})
        out[kind] = sorted(str(p) for p in root.glob(f"{kind}-*.tar"))
    return out


class JpegTo:
    """Picklable per-sample JPEG decode (+ bicubic resize) for the DataLoader workers."""

    def __init__(self, side: int | None) -> None:
        self.side = side

    def __call__(self, sample: dict) -> tuple[torch.Tensor, int]:
        from PIL import Image

        im = Image.open(io.BytesIO(sample["jpg"])).convert("RGB")
        if self.side:
            im = im.resize((self.side, self.side), Image.BICUBIC)
        return torch.from_numpy(np.asarray(im).transpose(2, 0, 1).copy()), int(sample["cls"])


class RawSize:
    """Picklable no-decode stage: the pipeline's own cost (tar reading, collation, transfer)."""

    def __call__(self, sample: dict) -> tuple[torch.Tensor, int]:
        return torch.tensor([len(sample["wlc"])]), int(sample["cls"])


def per_sample_ms(items: list[np.ndarray], codec: str, side: int, quality: int) -> dict[str, float]:
    """Single-thread cost of each pipeline's decoding alone, median ms per sample."""
    from PIL import Image

    import walloc_io

    c = walloc_io.load_codec(codec, device="cpu")
    blobs = [c.encode(im.transpose(2, 0, 1)) for im in items[:64]]
    jpegs = []
    for im in items[:64]:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, format="JPEG", quality=quality)
        jpegs.append(buf.getvalue())

    def jpeg(blob: bytes, resize: bool) -> None:
        im = Image.open(io.BytesIO(blob)).convert("RGB")
        if resize:
            im = im.resize((side, side), Image.BICUBIC)
        np.asarray(im)

    work = {"entropy decoding (a)": lambda: [c.decode_latents(b) for b in blobs],
            "JPEG decode + bicubic (c)": lambda: [jpeg(b, True) for b in jpegs],
            "JPEG decode (d)": lambda: [jpeg(b, False) for b in jpegs]}
    out = {}
    for name, fn in work.items():
        times = []
        for _ in range(5):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        out[name] = 1e3 * float(np.median(times)) / len(blobs)
    return out


def pipelines(urls: dict[str, list[str]], codec: str, side: int):
    import webdataset as wds

    import walloc_io

    def wlc(to: str):
        return (wds.WebDataset(urls["wlc"], shardshuffle=False)
                .decode(walloc_io.wds_decoder(codec, to=to)).to_tuple("wlc", "cls"))

    def jpg(side_: int | None):
        return wds.WebDataset(urls["jpg"], shardshuffle=False).map(JpegTo(side_))

    return {"(0) WaLLoC shards, members not decoded (pipeline ceiling)":
            (wds.WebDataset(urls["wlc"], shardshuffle=False).map(RawSize()), None),
            "(a) WaLLoC -> latents": (wlc("latents"), None),
            "(b) WaLLoC -> signals (batched decode)": (wlc("deferred"), "decode"),
            f"(c) JPEG -> bicubic {side}x{side}": (jpg(side), None),
            "(d) JPEG full resolution": (jpg(None), None)}


def run(dataset, stage, decoder, batch: int, workers: int, device, epochs: int) -> tuple[float, tuple]:
    from torch.utils.data import DataLoader

    import walloc_io

    loader = DataLoader(dataset, batch_size=batch, num_workers=workers,
                        collate_fn=walloc_io.collate, persistent_workers=workers > 0)
    rates, shape = [], ()
    for _ in range(epochs):
        n, t0 = 0, time.perf_counter()
        for x, _labels in loader:
            if stage == "decode":
                x = decoder(x, output="unit")
            x = x.to(device, non_blocking=True).float()
            shape = tuple(x.shape[1:])
            n += x.shape[0]
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(n / (time.perf_counter() - t0))
    return max(rates[1:] or rates), shape  # the first epoch includes worker start-up


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=Path, default=Path("data/images/val"))
    p.add_argument("--codec", default="rgb-16x")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--count", type=int, default=512)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--quality", type=int, default=90)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path)
    args = p.parse_args()

    import walloc_io
    from walloc_io.codec import pick_device

    device = pick_device(args.device)
    cfg = walloc_io.load_codec(args.codec, device="cpu").config
    f = 2 ** cfg.levels
    side = int(round(args.size / f * math.sqrt(cfg.latent_channels / cfg.channels)))
    items = crops(args.images, args.size, args.count)
    decoder = walloc_io.BatchDecoder(args.codec, device=device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        urls = write_shards(Path(tmp), items, args.codec, args.quality)
        sizes = {k: sum(Path(u).stat().st_size for u in v) for k, v in urls.items()}
        for name, (dataset, stage) in pipelines(urls, args.codec, side).items():
            rate, shape = run(dataset, stage, decoder, args.batch, args.workers, device, args.epochs)
            rows.append((name, rate, shape))
            print(f"{name}: {rate:.0f} samples/s, tensor {shape}", flush=True)
        costs = per_sample_ms(items, args.codec, side, args.quality)
    ceiling, rows = rows[0], rows[1:]
    base = rows[2][1]
    lines = [f"# Loader throughput: {args.count} crops of {args.size}x{args.size} from {args.images}",
             "", f"Command: `python benchmarks/bench_loader.py --images {args.images} --count "
             f"{args.count} --batch {args.batch} --workers {args.workers}`; device {device}; "
             f"torch threads {torch.get_num_threads()}; shards: WaLLoC ({args.codec}) "
             f"{sizes['wlc'] / 1e6:.2f} MB, JPEG q{args.quality} {sizes['jpg'] / 1e6:.2f} MB.", "",
             "| pipeline | tensor per sample | samples/s | vs (c) |", "|---|---|---|---|"]
    lines += [f"| {n} | {'x'.join(map(str, s))} | {r:.0f} | {r / base:.2f}x |" for n, r, s in rows]
    lines += [f"| {ceiling[0]} | - | {ceiling[1]:.0f} | {ceiling[1] / base:.2f}x |"]
    ratio = rows[0][1] / base
    lines += ["", f"Target (a) >= 3x (c): {'MET' if ratio >= 3 else 'MISSED'} ({ratio:.2f}x).", "",
              "Decoding alone, one thread, median ms per sample (same run):", ""]
    lines += [f"- {name}: {ms:.3f} ms" for name, ms in costs.items()]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
