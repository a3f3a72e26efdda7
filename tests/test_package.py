"""The package's shape: imports point down, the lazy face, register(), one version."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import walloc_io

SRC = Path(walloc_io.__file__).parent

# Lower layers never import higher ones (equal ranks only within one component):
# cli -> pipelines/training -> codecs -> spectral -> codec -> presets -> model -> entropy/transform
# -> bitstream/signal/boundary/media/metrics -> config -> quality -> errors.
RANK = {"errors": 0, "quality": 1, "config": 2, "bitstream": 3, "signal": 3, "boundary": 3,
        "media": 3, "metrics": 3, "entropy": 4, "transform": 4, "latents": 4, "model": 5,
        "presets": 6, "codec": 7,
        "spectral": 8, "codecs": 9, "pipelines": 10, "training": 10, "evaluation": 10, "cli": 11}


def imported_components(path: Path) -> set[str]:
    """The walloc_io components a module imports (relative imports resolved)."""
    rel = path.relative_to(SRC).with_suffix("").parts
    package = ["walloc_io", *rel[:-1]]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            names = [base + node.module.split(".")] if node.module else [base + [a.name] for a in
                                                                          node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("walloc_io"):
            names = [node.module.split(".")]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names if a.name.startswith("walloc_io")]
        else:
            continue
        found |= {n[1] for n in names if len(n) > 1}
    return found


def test_imports_point_down():
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("").parts
        if rel == ("__init__",):
            continue  # the package face re-exports everything lazily
        here = rel[0]
        for target in imported_components(path) - {here}:
            assert target in RANK, f"{'/'.join(rel)}: unknown component {target} (add it to RANK)"
            if RANK[target] >= RANK[here]:
                upward.append(f"{'/'.join(rel)} imports walloc_io.{target}")
    assert not upward, "\n".join(upward)


def test_every_component_is_ranked():
    components = {p.relative_to(SRC).parts[0].removesuffix(".py") for p in SRC.glob("*")
                  if p.suffix == ".py" or (p / "__init__.py").is_file()} - {"__init__"}
    assert components <= set(RANK), components - set(RANK)


def test_lazy_names_are_listed_and_resolve():
    names = dir(walloc_io)
    for name in ("load_codec", "open_latents", "wds_decoder", "register", "load_config"):
        assert name in names and getattr(walloc_io, name) is not None


def test_register_is_idempotent():
    import numcodecs
    from zarr.registry import get_codec_class

    walloc_io.register()
    walloc_io.register()
    assert type(numcodecs.get_codec({"id": "walloc", "preset": "rgb-16x"})).__name__ == "WallocCodec"
    assert get_codec_class("walloc").__name__ == "WallocZarrCodec"


def test_one_version_source():
    from importlib.metadata import version

    assert version("walloc-io") == walloc_io.__version__


def test_import_walloc_io_pulls_in_no_heavy_ecosystem():
    code = ("import sys, walloc_io; walloc_io.read_header; walloc_io.load_config('rgb-16x'); "
            "print(sorted(m for m in ('torch', 'zarr', 'dask', 'webdataset', 'numcodecs') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_adapter_modules_import_no_torch():
    """The WebDataset handler, the numcodecs/Zarr faces and the options object are torch-free
    until a model is needed (torch's Dataset class aside, in pipelines.datasets)."""
    code = ("import sys, walloc_io.pipelines.wds, walloc_io.codecs.numcodec, walloc_io.codecs.zarr3, "
            "walloc_io.codecs.options, walloc_io.codecs.stored, walloc_io.latents; "
            "print('torch' in sys.modules, 'dask' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
