"""Versions a report's footer names, so a reader knows what produced it."""

from __future__ import annotations

from mnv4_postmortem import __version__


def footer_versions(**known: str | None) -> dict[str, str | None]:
    """Tool version plus whatever the diagnosis knows (rule pack, timm era, schema)."""
    return {"tool": f"mnv4-postmortem {__version__}", **known}
