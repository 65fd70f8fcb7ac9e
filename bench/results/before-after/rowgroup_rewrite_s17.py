"""A settled margay store's flow shared files rewritten with another row-group size, every other COPY option as
layout.py writes them (`Layout._format`) and the rows in the same order; roll-ups untouched. Rewritten with the
size they already have, the files come out byte for byte the same size (the control).

    python rowgroup_rewrite_s17.py STORE ROWS   # STORE: a copy of a `peers` or `fleet` work folder
"""

from __future__ import annotations

import glob
import os
import sys

import duckdb

from margay.ingest.output import sql_path

OPTIONS = ("FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 9, ROW_GROUP_SIZE {rows}, PARQUET_VERSION V2, "
           "BLOOM_FILTER_FALSE_POSITIVE_RATIO 0.01, DICTIONARY_SIZE_LIMIT 2048")


def main(store: str, rows: int) -> None:
    con = duckdb.connect()
    for path in sorted(glob.glob(f"{store}/data/store/flows/_shared/*/*.parquet")):
        if "rollup" in path:
            continue
        tmp = path + ".tmp"
        con.execute(f"COPY (SELECT * FROM read_parquet(?)) TO {sql_path(tmp)} "  # noqa: S608 - a quoted path, an int
                    f"({OPTIONS.format(rows=int(rows))})", [path])
        print(path, os.path.getsize(path), os.path.getsize(tmp))
        os.replace(tmp, path)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
