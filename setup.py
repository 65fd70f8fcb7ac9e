"""The build's one part pyproject.toml cannot declare: the optional C scanner of ingest (ingest/_keyscan.c).

It is optional: without a C compiler (or Python's headers) the build goes on without it, and margay asks
DuckDB instead (ingest/keyscan.py) -- the same answers, ~4.8 us a record slower on a large batch.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("margay.ingest._keyscan", ["src/margay/ingest/_keyscan.c"], optional=True,
                             extra_compile_args=["-O2"])])
