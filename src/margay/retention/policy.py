"""Retention in LogStorage form (spec §10): days per log type and Calico's rule for what expires.

Rule: a log written on a day that began at least N days ago is removed. Partitions are UTC days, so the
partition of day D expires at D 00:00 UTC + N days (keep x whole days with N = x + 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..config import load_documents
from ..errors import ConfigError
from ..logtypes import REGISTRY, LogType
from ..store.backend import Partition

API_VERSION = "operator.tigera.io/v1"
KIND = "LogStorage"
NAME = "tigera-secure"
# spec.retention fields: the ones margay stores, plus those it accepts for LogStorage compatibility.
SETTINGS = {lt.retention_setting for lt in REGISTRY.values() if lt.retention_setting}
ACCEPTED = SETTINGS | {"snapshots", "complianceReports"}


def _defaults() -> dict[str, int]:
    return {lt.name: lt.retention_days for lt in REGISTRY.values()}


@dataclass(frozen=True)
class RetentionPolicy:
    """Days kept per margay log type name."""

    days: dict[str, int] = field(default_factory=_defaults)

    def days_for(self, log_type: str) -> int:
        return self.days.get(log_type, REGISTRY[log_type].retention_days if log_type in REGISTRY else 0)

    def expires_at(self, p: Partition) -> datetime:
        """When partition `p` becomes removable: the start of its UTC day plus the type's days. A day that is no
        `yyyymmdd` (a record past year 9999, stored before ingest refused them) is never removable: the run goes
        on with every other partition instead of failing on it."""
        try:
            day = datetime.strptime(p.day, "%Y%m%d").replace(tzinfo=UTC)
            return day + timedelta(days=self.days_for(p.log_type))
        except (ValueError, OverflowError):
            return datetime.max.replace(tzinfo=UTC)

    def expired(self, p: Partition, now: datetime) -> bool:
        if p.log_type not in REGISTRY:
            return False  # never drop what this policy does not know
        return now >= self.expires_at(p)

    @classmethod
    def from_file(cls, path: Path | None) -> RetentionPolicy:
        """The LogStorage document of a config file, or Calico's defaults when there is none."""
        if path is None:
            return cls()
        return cls.from_documents(load_documents(path))

    @classmethod
    def from_documents(cls, docs: list[dict[str, Any]]) -> RetentionPolicy:
        found = [d for d in docs if d.get("kind") == KIND]
        if len(found) > 1:
            raise ConfigError(f"{KIND}: only one document may be given (Calico's is named {NAME})")
        return cls.from_log_storage(found[0]) if found else cls()

    @classmethod
    def from_log_storage(cls, doc: dict[str, Any]) -> RetentionPolicy:
        if doc.get("apiVersion") != API_VERSION:
            raise ConfigError(f"{KIND} apiVersion: expected {API_VERSION}, got {doc.get('apiVersion')!r}")
        name = (doc.get("metadata") or {}).get("name")
        if name is not None and name != NAME:
            raise ConfigError(f"{KIND} metadata.name: must be {NAME!r} (as Calico requires), got {name!r}")
        spec = doc.get("spec") or {}
        if not isinstance(spec, dict):
            raise ConfigError(f"{KIND} spec: expected a mapping")
        retention = spec.get("retention") or {}
        if not isinstance(retention, dict):
            raise ConfigError(f"{KIND} spec.retention: expected a mapping of days per log type")
        days = _defaults()
        for key, value in retention.items():
            where = f"{KIND} spec.retention.{key}"
            if key not in ACCEPTED:
                raise ConfigError(f"{where}: unknown field (known: {', '.join(sorted(ACCEPTED))})")
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{where}: expected a whole number of days >= 0, got {value!r}")
            for lt in REGISTRY.values():
                if lt.retention_setting == key:
                    days[lt.name] = value
        return cls(days)

    def describe(self) -> list[tuple[LogType, int, str]]:
        """(log type, days, where the number comes from) for every log type."""
        return [(lt, self.days_for(lt.name),
                 f"spec.retention.{lt.retention_setting}" if lt.retention_setting else "fixed")
                for lt in REGISTRY.values()]
