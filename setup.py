"""The build's one part pyproject.toml cannot declare: ingest's optional C extensions, the scanner of undeclared
keys (ingest/_keyscan.c) and the parser of records into Arrow columns (ingest/_columns.c).

Both are optional: without a C compiler (or Python's headers) the build goes on without them, and margay asks
DuckDB instead (ingest/keyscan.py, read_json) -- the same answers, slower.
"""

from setuptools import Extension, setup

# Each extension's files share one header named after it (_keyscan.h, _columns.h).
SOURCES = {"_keyscan": ["_keyscan.c", "_keyscan_count.c"],
           "_columns": ["_columns.c", "_columns_json.c", "_columns_lex.c", "_columns_ip.c"]}
setup(ext_modules=[Extension(f"margay.ingest.{name}", [f"src/margay/ingest/{f}" for f in files], optional=True,
                             depends=[f"src/margay/ingest/{name}.h"], extra_compile_args=["-O2"])
                   for name, files in SOURCES.items()])
