"""Reading detection resources from YAML files or a folder of them; errors name the file, document and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .resources import Resource, ResourceError, parse_resource


def _documents(path: Path) -> list[tuple[str, Any]]:
    try:
        docs = list(yaml.safe_load_all(path.read_text()))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ResourceError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    out: list[tuple[str, Any]] = []
    for i, doc in enumerate(docs):
        if doc is None:
            continue
        if isinstance(doc, dict) and doc.get("kind") == "List":  # kubectl get -o yaml
            out.extend((f"{path} document {i + 1} item {j + 1}", item) for j, item in enumerate(doc.get("items") or []))
        else:
            out.append((f"{path} document {i + 1}", doc))
    return out


def load_resources(path: Path) -> list[Resource]:
    """Every GlobalThreatFeed / GlobalAlert / GlobalAlertTemplate in a YAML file or a folder (*.yaml, *.yml)."""
    if not path.exists():
        raise ResourceError(f"{path}: no such file or folder")
    files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")) if path.is_dir() else [path]
    out: list[Resource] = []
    names: dict[tuple[str, str], str] = {}
    for f in files:
        for where, doc in _documents(f):
            try:
                res = parse_resource(doc)
            except ResourceError as exc:
                raise ResourceError(f"{where}: {exc}", details=exc.details) from None
            kind = doc["kind"]
            if (kind, res.name) in names:
                raise ResourceError(f"{where}: {kind} {res.name!r} is already defined in {names[(kind, res.name)]}")
            names[(kind, res.name)] = where
            out.append(res)
    return out
