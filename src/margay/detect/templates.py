"""The built-in GlobalAlertTemplates (templates.yaml) and turning one into a GlobalAlert."""

from __future__ import annotations

import copy
from importlib import resources
from typing import Any

import yaml

from .resources import Alert, ResourceError, parse_resource


def template_documents() -> dict[str, dict[str, Any]]:
    text = resources.files("margay.detect").joinpath("templates.yaml").read_text()
    return {d["metadata"]["name"]: d for d in yaml.safe_load_all(text) if d}


def templates() -> dict[str, Alert]:
    out = {}
    for name, doc in template_documents().items():
        parsed = parse_resource(doc)
        assert isinstance(parsed, Alert)
        out[name] = parsed
    return out


def alert_from_template(template: str, name: str, **overrides: Any) -> dict[str, Any]:
    """A GlobalAlert document from a template, with spec fields overridden (checked like any alert)."""
    docs = template_documents()
    if template not in docs:
        raise ResourceError(f"template: no built-in template {template!r} (have: {', '.join(sorted(docs))})")
    doc = copy.deepcopy(docs[template])
    doc["kind"] = "GlobalAlert"
    doc["metadata"] = {"name": name, "annotations": {"margay.io/template": template}}
    doc["spec"].update(overrides)
    parse_resource(doc)
    return doc
