"""The GPU benchmark runs (and skips its CUDA columns cleanly) on a machine without CUDA."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

BENCH = Path(__file__).parent.parent / "benchmarks"


def test_bench_gpu_runs_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.md"
    run = subprocess.run([sys.executable, str(BENCH / "bench_gpu.py"), "--size", "64", "--batch",
                          "2", "--repeat", "1", "--out", str(out)], capture_output=True, text=True,
                         cwd=BENCH, check=True)
    text = out.read_text()
    assert text in run.stdout + "\n"
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert {"encode", "decode to signal", "decode to latents"} <= set(rows)
    if not torch.cuda.is_available():
        assert "no CUDA device" in text and rows["encode"].rstrip().endswith("- | - |")
