"""Where the runner's results go: rendered by the renderers in the registry, never formatted here.

The runner builds typed records and documents (the spec, the plan, the verdicts, the ladder, the LR range
test); :class:`RunnerOutput` asks the render registry (``analyzer.render``, by kind and name: the runner
imports no renderer module) for their text, prints it on the runner's console, and saves their pictures.
Text, JSON and pictures therefore come from one place and stay in step (issue 16).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

__all__ = ["RunnerOutput"]


class RunnerOutput:
    """The registry's renderers, on a console (status lines and progress bars stay the console's)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def text(self, kind: str, subject: Any) -> str:
        from mnv4_postmortem.analyzer.render import renderer

        return renderer(kind, "text")(subject, width=self.console.width)

    def show(self, kind: str, subject: Any) -> None:
        """``kind``'s text for ``subject``, on the console as the renderer laid it out (no markup read into it)."""
        self.console.print(self.text(kind, subject).rstrip("\n"), markup=False, highlight=False, emoji=False)

    def document(self, kind: str, subject: Any) -> str:
        from mnv4_postmortem.analyzer.render import renderer

        return renderer(kind, "json")(subject)

    def save_plots(self, kind: str, subject: Any, base: Path) -> list[Path]:
        """``kind``'s picture as ``base``.png and ``base``.svg."""
        from mnv4_postmortem.analyzer.render import renderer

        base.parent.mkdir(parents=True, exist_ok=True)
        paths = []
        for fmt in ("png", "svg"):
            image = renderer(kind, fmt)(subject)
            path = base.with_suffix(f".{fmt}")
            if isinstance(image, bytes):
                path.write_bytes(image)
            else:
                path.write_text(image, encoding="utf-8")
            paths.append(path)
        return paths
