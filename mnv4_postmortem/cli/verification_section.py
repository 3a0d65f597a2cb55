"""``report``'s Verification section: find the verification.json that belongs to the run (the renderers
draw it from ``Diagnosis.verification``)."""

from __future__ import annotations

from pathlib import Path

import click


def find_verification(run_dir: Path, given: Path | None):
    """The verification for this run: ``--verification DIR``, else the default out folder's, else None."""
    from mnv4_postmortem.analyzer.verification import VerificationError, default_verification_path, load_verification
    from mnv4_postmortem.cli.app import echo_err, fail

    path = given if given is not None else default_verification_path(run_dir)
    if given is None and not path.is_file():
        return None
    try:
        return load_verification(path)
    except VerificationError as exc:
        if given is not None:
            fail(str(exc))
        echo_err(f"mnv4-postmortem: warning: {exc}; no Verification section")
        return None
