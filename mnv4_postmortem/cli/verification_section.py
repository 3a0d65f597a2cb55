"""``report``'s Verification section: find the verification.json and append it to each format.

Kept out of report.py (one call there) so the report renderers can change without touching it.
"""

from __future__ import annotations

from pathlib import Path

import click


def find_verification(run_dir: Path, given: Path | None):
    """The verification for this run: ``--verification DIR``, else the default out folder's, else None."""
    from mnv4_postmortem.analyzer.verification import VerificationError, default_verification_path, load_verification
    from mnv4_postmortem.cli.app import fail

    path = given if given is not None else default_verification_path(run_dir)
    if given is None and not path.is_file():
        return None
    try:
        return load_verification(path)
    except VerificationError as exc:
        if given is not None:
            fail(str(exc))
        click.echo(f"mnv4-postmortem: warning: {exc}; no Verification section", err=True)
        return None


def with_verification(text: str | None, verification, fmt: str, output: Path | None) -> str | None:
    """``text`` is the rendered report (None when text went straight to the terminal)."""
    if verification is None:
        return text
    from mnv4_postmortem.analyzer.render import verification as section

    if fmt == "json":
        return section.add_to_json(text, verification)
    if fmt == "html":
        return section.add_to_html(text, verification)
    if text is None:
        from mnv4_postmortem.cli.app import stdout_console

        section.render_verification_text(verification, stdout_console())
        return None
    import io

    from rich.console import Console

    console = Console(record=True, width=100, file=io.StringIO())
    section.render_verification_text(verification, console)
    return text + console.export_text()
