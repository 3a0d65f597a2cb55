"""The README's example output is the real output of `report fixtures/runs/seed_mnv4` (issue 6, defect 4).

To refresh the README after a deliberate change of the output: ``python tests/test_readme.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
COMMAND = ("report", "fixtures/runs/seed_mnv4")
BLOCK = re.compile(r"(<!-- example: (?P<cmd>[^>]*?) -->\n```\n)(?P<body>.*?)(```\n<!-- /example -->)", re.S)


def real_output(args: tuple[str, ...] = COMMAND) -> str:
    proc = subprocess.run([sys.executable, "-m", "mnv4_postmortem", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "COLUMNS": "100"}, timeout=120, check=True)
    return f"$ mnv4-postmortem {' '.join(args)}\n{proc.stdout}"


def readme_example() -> tuple[str, str]:
    match = BLOCK.search(README.read_text(encoding="utf-8"))
    assert match, "README.md has no <!-- example: ... --> block"
    return match["cmd"], match["body"]


def test_readme_example_is_the_real_output():
    command, body = readme_example()
    assert command == " ".join(COMMAND)
    assert body == real_output(), "README example drifted: run `python tests/test_readme.py` to regenerate it"


def test_readme_example_says_what_the_output_says_about_over_regularization():
    """The drift that was found: the README said 'considered, did not fire' while it fires."""
    _, body = readme_example()
    fired = re.search(r"^\d+\. \w+ over-regularization", real_output(), re.M) is not None
    assert (re.search(r"^\d+\. \w+ over-regularization", body, re.M) is not None) == fired


def update() -> None:
    text = README.read_text(encoding="utf-8")
    new = BLOCK.sub(lambda m: m.group(1) + real_output() + m.group(4), text, count=1)
    README.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    update()
