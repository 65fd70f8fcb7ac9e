"""Reading a data directory without its server (e.g. `margay forward status`): only the Parquet files,
never the journal, so it is safe beside a running server."""

from __future__ import annotations

from pathlib import Path

from ...logtypes import LogType
from ...query.selector import Node
from ..catalog import Catalog
from .engine import connect
from .feed import _where_sql


class OfflineStore:
    """The committed files of a data directory, for backlog counts."""

    def __init__(self, data_dir: Path) -> None:
        self.catalog = Catalog(Path(data_dir) / "store")
        self.catalog.load()
        self.con = connect()

    def backlog(self, lt: LogType, after_seq: int, *, where: Node | None = None) -> tuple[int, float | None]:
        files = [str(f.path) for (t, _, _), fs in self.catalog.parts.items() if t == lt.name
                 for f in fs if f.seq_hi > after_seq]
        if not files:
            return 0, None
        cond, params = _where_sql(lt, where)
        n, t = self.con.execute(
            "SELECT count(*), epoch(min(generated_time)) FROM read_parquet(?, union_by_name = true) AS t "  # noqa: S608
            f"WHERE _seq > ? AND ({cond})", [files, after_seq, *params]).fetchall()[0]
        return int(n), (float(t) if t is not None else None)

    def close(self) -> None:
        self.con.close()
