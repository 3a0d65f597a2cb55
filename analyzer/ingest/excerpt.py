"""A pasted excerpt (``report -`` / ``inspect -``): what people paste into a GitHub issue, read from stdin.

An excerpt is any mix of, in any order:

- timm console log lines (``Train: 3 [ 50/391 ...]``, ``Test: [ 78/78] ... Acc@1 ...``, start-up lines);
- summary.csv rows, with or without their header line; a headerless row of 5 or 6 numbers is read in
  timm's column order (``epoch, train_loss, eval_loss, eval_top1, eval_top5[, lr]``) and a warning says so;
- the arguments: a command line (``python train.py /data --model x --lr 0.6 --model-ema \\``, continued
  over several lines) or ``key: value`` lines of train.py arguments (an args.yaml excerpt).

Markdown code fences (``` and ~~~ lines) and ``>`` quote prefixes are removed first. Every line keeps its
line number in the excerpt (``<stdin>:12``): each part is handed to its format's parser with the other
parts' lines blanked, so one parser never sees another's lines. Nothing is written anywhere: the parts
are parsed from memory.

Bad input: binary data, an excerpt over :data:`MAX_EXCERPT_BYTES`, or nothing recognisable raise
:class:`IngestError` with a message that says what was expected; over-long lines are skipped by the
parsers with an issue naming the line.
"""

from __future__ import annotations

import io
import re
import shlex
from pathlib import Path
from typing import Any, BinaryIO, Mapping

import numpy as np
import yaml

from mnv4_postmortem.analyzer.ingest.args_yaml import ArgsYaml, args_contribution
from mnv4_postmortem.analyzer.ingest.console_log import log_contribution, parse_console_stream
from mnv4_postmortem.analyzer.ingest.contribution import Contribution
from mnv4_postmortem.analyzer.ingest.merge import merge_contributions
from mnv4_postmortem.analyzer.ingest.summary_csv import headerless_columns, parse_summary_stream, summary_contribution
from mnv4_postmortem.analyzer.timm.argument_names import DIAGNOSED_NAMES
from mnv4_postmortem.analyzer.model import IngestError, IngestIssue, Run, SourceRef

STDIN_NAME = "<stdin>"
MAX_EXCERPT_BYTES = 16 << 20      # an excerpt is a few kB; a whole log belongs in a file
MAX_LINE_CHARS = 64 << 10         # the parsers' own line limit
_FENCE = re.compile(r"^\s*(```|~~~)")
_QUOTE = re.compile(r"^\s{0,3}(?:>\s?)+")
_ARG_LINE = re.compile(r"^\s*([a-z][a-z0-9_]*)\s*:\s*(.*?)\s*$")
_SUMMARY_HEADER = re.compile(r"^\s*epoch\s*,.*\btrain_loss\b")
_COMMAND = re.compile(r"(?:^|\s)(?:\S*train\.py|\S*distributed_train\.sh|torchrun|python\s+-m\s+torch\.distributed\S*)(?=\s|$)")
_SHORT_OPTIONS = {"-b": "batch_size", "-j": "workers", "-vb": "validation_batch_size"}


def read_stdin(stream: BinaryIO) -> bytes:
    """Everything on stdin, refused past :data:`MAX_EXCERPT_BYTES` (without reading further)."""
    data = stream.read(MAX_EXCERPT_BYTES + 1)
    if len(data) > MAX_EXCERPT_BYTES:
        raise IngestError(f"more than {MAX_EXCERPT_BYTES >> 20} MiB on stdin; an excerpt is expected "
                          "(for a whole run, give its directory or file instead of '-')", SourceRef(STDIN_NAME))
    return data


def load_excerpt(data: bytes, shown: str = STDIN_NAME) -> Run:
    """The run an excerpt describes. Raises IngestError when nothing in it is usable."""
    text = _text(data, shown)
    lines = [_unquote(line) for line in text.split("\n")]
    other = _other_trainer("\n".join(lines), shown)
    if other is not None:
        return merge_contributions(Path(shown), [other], list(other.issues))
    parts = _split(lines)
    issues: list[IngestIssue] = []
    contributions = _contributions(parts, lines, shown, issues)
    if not contributions:
        detail = "; ".join(str(issue) for issue in issues[:3])
        raise IngestError("nothing usable on stdin: expected timm log lines (Train: / Test:), summary.csv rows "
                          "or train.py arguments" + (f" ({detail})" if detail else ""), SourceRef(shown))
    for contribution in contributions:
        issues.extend(contribution.issues)
    return merge_contributions(Path(shown), contributions, issues)


def _other_trainer(text: str, shown: str) -> Contribution | None:
    """Another trainer's excerpt (DeiT log.txt / stdout lines, mmcls logs, a trainer_state.json), when the format
    registry says so by content and that format reads text in memory; None for timm's own lines."""
    from mnv4_postmortem.analyzer.ingest import formats

    claimed = formats.sniff(shown, text[:1 << 16].encode("utf-8", "replace"))
    if claimed is None or not hasattr(claimed[0], "parse_text"):
        return None
    contribution = claimed[0].parse_text(text, shown)
    return _relabel(contribution, "pasted excerpt: ")


# ---------------------------------------------------------------------------------------------- cleaning


def _text(data: bytes, shown: str) -> str:
    if not data.strip():
        raise IngestError("stdin is empty: paste timm log lines, summary.csv rows or train.py arguments",
                          SourceRef(shown))
    codes = np.frombuffer(data[:1 << 16], np.uint8)
    control = (codes < 32) & ~np.isin(codes, (9, 10, 13, 27))
    if control.any() and control.mean() > 0.01 or b"\x00" in data:
        at = int(np.argmax(control)) if control.any() else data.index(b"\x00")
        raise IngestError(f"binary data on stdin (byte {at}); an excerpt must be text", SourceRef(shown, offset=at))
    return data.decode("utf-8", "replace").replace("\r\n", "\n")


def _unquote(line: str) -> str:
    """A line without its Markdown quote prefix (``> ``, ``> > ``); a fence line becomes blank."""
    line = _QUOTE.sub("", line, count=1)
    return "" if _FENCE.match(line) else line


# ---------------------------------------------------------------------------------------------- splitting


def _split(lines: list[str]) -> dict[str, list[int]]:
    """Line indices of each part: ``log``, ``csv`` (rows and headers) and ``args``."""
    parts: dict[str, list[int]] = {"log": [], "csv": [], "args": []}
    continuing = False
    for index, line in enumerate(lines):
        if len(line) > MAX_LINE_CHARS:
            parts["log"].append(index)     # the log parser skips it with an issue naming the line
            continue
        stripped = line.strip()
        if not stripped:
            continue
        if continuing or _COMMAND.search(stripped) or stripped.startswith("--"):
            parts["args"].append(index)
            continuing = stripped.endswith("\\")
        elif _SUMMARY_HEADER.match(stripped) or headerless_columns(stripped) is not None or _is_row(stripped):
            parts["csv"].append(index)
        elif (match := _ARG_LINE.match(stripped)) and match.group(1) in DIAGNOSED_NAMES:
            parts["args"].append(index)
        else:
            parts["log"].append(index)
    return parts


def _is_row(line: str) -> bool:
    """A summary row under a header (any width): an epoch number and numbers, comma-separated."""
    cells = [c.strip() for c in line.split(",")]
    return len(cells) >= 3 and cells[0].isdigit() and all(_number(c) is not None for c in cells[1:])


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _only(lines: list[str], keep: list[int]) -> bytes:
    """The excerpt with every line but ``keep`` blanked, so line numbers stay the excerpt's."""
    chosen = set(keep)
    return "\n".join(line if i in chosen else "" for i, line in enumerate(lines)).encode("utf-8") + b"\n"


# ---------------------------------------------------------------------------------------------- parts


def _contributions(parts: Mapping[str, list[int]], lines: list[str], shown: str,
                   issues: list[IngestIssue]) -> list[Contribution]:
    out: list[Contribution] = []
    if parts["log"]:
        log = parse_console_stream(io.BytesIO(_only(lines, parts["log"])), shown)
        if len(log.steps) or len(log.evals) or log.info:
            out.append(_relabel(log_contribution(log, shown), "pasted excerpt: "))
        else:
            issues.extend(log.issues)
    if parts["csv"]:
        first = lines[parts["csv"][0]].strip()
        if _SUMMARY_HEADER.match(first) or headerless_columns(first) is not None:
            try:
                csv = parse_summary_stream(io.BytesIO(_only(lines, parts["csv"])), shown)
                out.append(_relabel(summary_contribution(csv), "pasted excerpt: "))
            except IngestError as exc:
                issues.append(IngestIssue(exc.source or SourceRef(shown), exc.message, "error"))
        else:
            issues.append(IngestIssue(SourceRef(shown, line=parts["csv"][0] + 1),
                                      "summary rows without a header and not 5 or 6 numbers wide: timm's column "
                                      "order cannot be assumed; paste the header line too"))
    if parts["args"]:
        args, arg_issues = _arguments(lines, parts["args"], shown)
        issues.extend(arg_issues)
        if args:
            out.append(_relabel(args_contribution(ArgsYaml(shown, args, ()), "train.py arguments"),
                                "pasted excerpt: "))
    return out


def _relabel(contribution: Contribution, prefix: str) -> Contribution:
    from dataclasses import replace

    sources = tuple(replace(s, family=prefix + (s.family or "")) for s in contribution.sources)
    return replace(contribution, sources=sources)


def _arguments(lines: list[str], indices: list[int], shown: str) -> tuple[dict[str, Any], list[IngestIssue]]:
    args: dict[str, Any] = {}
    issues: list[IngestIssue] = []
    command: list[str] = []
    for index in indices:
        line = lines[index].strip()
        match = _ARG_LINE.match(line)
        if match and not line.startswith("-") and not _COMMAND.search(line) and not command:
            args[match.group(1)] = _scalar(match.group(2))
        else:
            command.append(line.rstrip("\\").strip())
    if command:
        try:
            tokens = shlex.split(" ".join(command))
        except ValueError as exc:
            issues.append(IngestIssue(SourceRef(shown, line=indices[0] + 1), f"command line not understood ({exc})"))
            tokens = []
        args.update(_options(tokens))
    return args, issues


def _options(tokens: list[str]) -> dict[str, Any]:
    """``--lr 0.6 --model-ema --input-size 3 56 56 -b 64`` -> train.py's argument names (dashes to underscores)."""
    out: dict[str, Any] = {}
    key: str | None = None
    values: list[Any] = []

    def close() -> None:
        if key is not None:
            out[key] = True if not values else values[0] if len(values) == 1 else values

    for token in tokens:
        name = _option_name(token)
        if name is not None:
            close()
            key, values = name, []
            if "=" in token:   # --opt=value carries its value: what follows is not part of it
                values.append(_scalar(token.split("=", 1)[1]))
                close()
                key = None
        elif key is not None:
            values.append(_scalar(token))
    close()
    return out


def _option_name(token: str) -> str | None:
    if token.startswith("--") and len(token) > 2 and not _number(token):
        return token[2:].split("=", 1)[0].replace("-", "_")
    return _SHORT_OPTIONS.get(token)


def _scalar(text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (str, int, float, bool, list)) or value is None else text
