"""Compressed-domain learning: is a classifier on WaLLoC latents as good as one on pixels?

Task: which source image a grey patch comes from, over five real greyscale images shipped
with scikit-image that no preset was trained on (brick, grass and gravel textures, the
moon's surface, a microscopy cell image). Labels are the source, so they are honest; train
and test patches come from disjoint column bands of each image (left 60 % / right 35 %, a
gap between), so no test pixel is ever seen in training.

The same small CNN (3x3 convolutions, global average pooling) is trained three ways on the
same patches:

  (a) on the ``gray-16x`` WaLLoC latents of each patch (entropy-decoded integers; no decoder),
  (b) on the patch bicubic-downsampled to the latents' size (the same number of values),
  (c) on the full-resolution patch.

It reports test accuracy (mean and spread over seeds) and training time per epoch.

    python examples/compressed_domain_learning.py --out benchmarks/results/compressed-domain.md
    python examples/compressed_domain_learning.py --size 64 --epochs 10 --seeds 2 \
        --out benchmarks/results/compressed-domain-64.md
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

CLASSES = ("brick", "grass", "gravel", "moon", "cell")


def patches(size: int, per_class: int, split: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random ``size`` patches (uint8 ``(N, 1, size, size)``) from each class's column band."""
    import skimage.data

    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label, name in enumerate(CLASSES):
        image = getattr(skimage.data, name)()
        w = image.shape[1]
        lo, hi = (0, int(0.60 * w)) if split == "train" else (int(0.65 * w), w)
        for _ in range(per_class):
            y = rng.integers(0, image.shape[0] - size + 1)
            x = rng.integers(lo, hi - size + 1)
            xs.append(image[y:y + size, x:x + size])
            ys.append(label)
    return np.stack(xs)[:, None], np.array(ys)


def representations(x: np.ndarray, codec_name: str) -> dict[str, torch.Tensor]:
    """The three inputs for patches ``x``: latents, downsampled pixels, full pixels."""
    from PIL import Image

    import walloc_io
    codec = walloc_io.load_codec(codec_name, device="cpu")
    blobs = codec.encode_batch(list(x))  # real streams, as stored (default quality)
    # integer codes of each stream's quality grid, times each channel's step: the companded
    # latents on one scale (the default quality raises smooth patches to finer rungs)
    latents = np.stack([codec.decode_latents(b)
                        * codec.steps(walloc_io.read_header(b).quality)[:, None, None]
                        for b in blobs]).astype(np.float32)
    values = latents[0].size
    side = int(round(math.sqrt(values / x.shape[1])))
    small = np.stack([np.asarray(Image.fromarray(p[0]).resize((side, side), Image.BICUBIC))
                      for p in x])[:, None].astype(np.float32)
    bits = 8 * sum(len(b) for b in blobs) / x[:, 0].size
    print(f"  {len(x)} patches: latents {latents.shape[1:]}, downsampled {small.shape[1:]}, "
          f"{bits:.3f} bpp as WaLLoC streams")
    return {"(a) WaLLoC latents": torch.from_numpy(latents),
            "(b) bicubic-downsampled pixels": torch.from_numpy(small),
            "(c) full-resolution pixels": torch.from_numpy(x.astype(np.float32))}


def make_net(channels: int, classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1), nn.GELU(),
        nn.Conv2d(32, 32, 3, padding=1), nn.GELU(),
        nn.Conv2d(32, 64, 3, padding=1), nn.GELU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.GELU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))


def train_eval(xtr, ytr, xte, yte, epochs: int, seed: int, batch: int = 64) -> tuple[float, float]:
    """Test accuracy and mean seconds per training epoch."""
    torch.manual_seed(seed)
    mean = xtr.mean(dim=(0, 2, 3), keepdim=True)
    std = xtr.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    net = make_net(xtr.shape[1], len(CLASSES))
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=epochs * math.ceil(len(xtr) / batch))
    ytr_t = torch.from_numpy(ytr)
    times = []
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(xtr))
        t0 = time.perf_counter()
        for i in range(0, len(xtr), batch):
            idx = order[i:i + batch]
            x = xtr[idx]
            if torch.rand(()) < 0.5:  # flips: cheap augmentation, valid in every representation
                x = x.flip(-1)
            loss = nn.functional.cross_entropy(net(x), ytr_t[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        times.append(time.perf_counter() - t0)
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(xte[i:i + 256]).argmax(1) for i in range(0, len(xte), 256)])
    return float((pred.numpy() == yte).mean()), float(np.mean(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--codec", default="gray-16x")
    p.add_argument("--size", type=int, default=32, help="patch side in pixels")
    p.add_argument("--train", type=int, default=600, help="training patches per class")
    p.add_argument("--test", type=int, default=200, help="test patches per class")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    xtr, ytr = patches(args.size, args.train, "train", seed=0)
    xte, yte = patches(args.size, args.test, "test", seed=1)
    print("train:")
    rtr = representations(xtr, args.codec)
    print("test:")
    rte = representations(xte, args.codec)
    rows = []
    for name in rtr:
        accs, secs = zip(*(train_eval(rtr[name], ytr, rte[name], yte, args.epochs, s)
                           for s in range(args.seeds)))
        rows.append((name, tuple(rtr[name].shape[1:]), np.mean(accs), np.std(accs), np.mean(secs)))
        print(f"{name}: accuracy {np.mean(accs):.3f} +- {np.std(accs):.3f}, "
              f"{np.mean(secs):.2f} s/epoch", flush=True)
    full = rows[2][4]
    lines = [f"# Compressed-domain learning: {len(CLASSES)}-way source classification of "
             f"{args.size}x{args.size} grey patches",
             "", f"Command: `python examples/compressed_domain_learning.py --codec {args.codec} "
             f"--size {args.size} --train {args.train} --test {args.test} --epochs {args.epochs} "
             f"--seeds {args.seeds}`", "",
             f"Classes: {', '.join(f'skimage.data.{c}' for c in CLASSES)} (none used to train any "
             f"preset); train/test patches from disjoint column bands; {args.train * len(CLASSES)} "
             f"training and {args.test * len(CLASSES)} test patches; same CNN, {args.epochs} epochs, "
             f"{args.seeds} seeds; CPU, {torch.get_num_threads()} threads.", "",
             "| input | tensor | test accuracy | s/epoch | epoch time vs full pixels |",
             "|---|---|---|---|---|"]
    lines += [f"| {n} | {'x'.join(map(str, s))} | {a:.3f} +- {sd:.3f} | {t:.2f} | {t / full:.2f}x |"
              for n, s, a, sd, t in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
