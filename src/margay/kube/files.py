"""Snapshots from YAML files (multi-document, `kind: List` too): margay's resources without an API server."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from .resources import CALICO_CRD, CALICO_V3, KINDS, api_kind
from .watch import Snapshot, _clean, _key


def _kind_name(doc: dict[str, Any]) -> str | None:
    kind = doc.get("kind")
    group = str(doc.get("apiVersion", "")).split("/")[0]
    if kind == "NetworkPolicy" and group in ("projectcalico.org", "crd.projectcalico.org"):
        return "CalicoNetworkPolicy"
    return kind if isinstance(kind, str) and kind in KINDS else None


def snapshot_from_files(path: Path, *, now: datetime) -> Snapshot:
    """Every known kind found in a YAML file or a folder of them, as a Snapshot (unknown kinds are ignored)."""
    if not path.exists():
        raise ConfigError(f"{path}: no such file or folder")
    files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file()) \
        if path.is_dir() else [path]
    found: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    api: dict[str, str] = {}

    def add(doc: dict[str, Any], where: str) -> None:
        if isinstance(doc.get("items"), list) and str(doc.get("kind", "")).endswith("List"):
            for item in doc["items"]:
                if isinstance(item, dict):
                    add(item, where)
            return
        name = _kind_name(doc)
        if name is None:
            return
        if not isinstance((doc.get("metadata") or {}).get("name"), str):
            raise ConfigError(f"{where}: a {doc['kind']} needs metadata.name")
        found.setdefault(name, {})[_key(doc)] = _clean(doc)
        api.setdefault(name, str(doc.get("apiVersion") or ""))

    for f in files:
        try:
            docs = list(yaml.safe_load_all(f.read_text()))
        except OSError as exc:
            raise ConfigError(f"{f}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{f}: not valid YAML: {exc}") from None
        for i, doc in enumerate(docs):
            if isinstance(doc, dict):
                add(doc, f"{f}: document {i + 1}")
    stamp = now.isoformat().replace("+00:00", "Z")
    lists: dict[str, dict[str, Any]] = {}
    for name, objs in found.items():
        version = api[name] or (CALICO_V3 if CALICO_CRD in KINDS[name].api_versions else KINDS[name].api_versions[0])
        lists[name] = {"kind": api_kind(name) + "List", "apiVersion": version, "metadata": {"resourceVersion": ""},
                       "items": sorted(objs.values(), key=_key), "requestStartedTimestamp": stamp,
                       "requestCompletedTimestamp": stamp}
    return Snapshot(lists)
