"""Build hook for the two C kernels (everything else is in pyproject.toml): the latent coder
and the CPU analysis (packet transform + linear encoder + companding)."""

from setuptools import Extension, setup

FLAGS = ["-O3", "-std=c11", "-ffp-contract=off", "-Wall", "-Wno-unused-parameter"]
HEADERS = ["src/walloc_io/_scratch.h"]

setup(ext_modules=[
    Extension("walloc_io.entropy._rans", ["src/walloc_io/entropy/_rans.c"], depends=HEADERS,
              extra_compile_args=FLAGS),
    Extension("walloc_io.model._analysis", ["src/walloc_io/model/_analysis.c"], depends=HEADERS,
              extra_compile_args=FLAGS, libraries=["m"]),
])
