"""A Kubernetes object as the canary and backup tools handle it: a plain dict, as the API returns it."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def name_of(obj: Obj) -> str:
    """``metadata.name``, or "?" where a message must name an object that has none."""
    return str(obj.get("metadata", {}).get("name", "?"))
