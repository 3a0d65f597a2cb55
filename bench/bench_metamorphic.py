"""Metamorphic retention (issue 13): for every labelled run, the variants a user plausibly has (log removed,
summary.csv alone, accuracy as fractions, continued on its plateau, first epochs only, noise, every second
epoch, pasted rows with and without header; tests/_metamorphic.py) and whether the label survives each.

No timing. Prints retention per variant and per cause, the variants declared unable to carry a label (with
the reason), and every lost case. The public holdout (fixtures/public/*, origin ``public-holdout``) is
printed on its own line and never mixed into the tuning figures.

Usage: python bench/bench_metamorphic.py [--runs N] [--only CAUSE]   (MNV4_SHARED=/path/to/shared)
Targets: >= 95 % over all variants, >= 90 % per variant.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from _labelled import load_labels  # noqa: E402
from _metamorphic import CANNOT_CARRY, DESCRIPTION, VARIANTS, outcomes  # noqa: E402

from mnv4_postmortem.analyzer.engine import load_pack  # noqa: E402
from mnv4_postmortem.analyzer.pipeline import diagnose  # noqa: E402


def _share(kept: list[bool]) -> str:
    return f"{sum(kept)}/{len(kept)} = {sum(kept) / len(kept):.0%}" if kept else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=0, help="only the first N labelled runs")
    parser.add_argument("--only", default="", help="only runs whose expected cause is this one")
    options = parser.parse_args()
    pack = load_pack()
    labels = [l for l in load_labels() if l.path.is_dir() and (not options.only or l.expected == options.only)]
    if options.runs:
        labels = labels[: options.runs]
    per_variant: dict[str, list[bool]] = defaultdict(list)
    per_cause: dict[str, list[bool]] = defaultdict(list)
    holdout: list[bool] = []
    lost, declared = [], 0
    for label in labels:
        for o in outcomes(label, lambda run: diagnose(run, pack)):
            if o.kept is None:
                declared += o.note.startswith("declared")
                continue
            if label.origin == "public-holdout":
                holdout.append(o.kept)
                continue
            per_variant[o.variant].append(o.kept)
            per_cause[o.cause].append(o.kept)
            if not o.kept:
                lost.append(f"  {o.run} [{o.variant}]: expected {o.cause}, got {o.diagnosed}")
    print(f"metamorphic retention over {len(labels)} labelled runs (holdout apart)")
    print(f"{'variant':<6}{'what':<40}{'kept':>16}")
    for v in VARIANTS:
        print(f"{v:<6}{DESCRIPTION[v]:<40}{_share(per_variant[v]):>16}")
    every = [k for v in per_variant.values() for k in v]
    print(f"{'all':<46}{_share(every):>16}")
    print("\nper cause")
    for cause in sorted(per_cause):
        print(f"  {cause:<24}{_share(per_cause[cause]):>16}")
    print(f"\npublic holdout (not used for tuning): {_share(holdout)}")
    print(f"\nvariants declared unable to carry the label: {declared}")
    for cause, (variants, reason) in sorted(CANNOT_CARRY.items()):
        print(f"  {cause}: {', '.join(sorted(variants))}: {reason}")
    if lost:
        print("\nlost:")
        print("\n".join(lost))
    worst = min((sum(v) / len(v) for v in per_variant.values() if v), default=0.0)
    overall = sum(every) / len(every) if every else 0.0
    print(f"\ntargets: overall {overall:.1%} (>= 95 %: {'met' if overall >= 0.95 else 'MISSED'}), "
          f"worst variant {worst:.1%} (>= 90 %: {'met' if worst >= 0.9 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
