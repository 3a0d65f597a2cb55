"""Rule engine cost: loading a pack and evaluating it on one run's namespace.

Generates 60 rules (three shapes, 20 thresholds each) into a temp dir and prints two ratios:

* load: compiling the pack vs. yaml.safe_load of the same files (the floor for any YAML rule format)
* evaluate: the engine on one namespace vs. the same conditions and evidence hand-written in Python

Run: .venv/bin/python bench/bench_engine.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import yaml

from mnv4_postmortem.analyzer.engine import evaluate, load_rules

N_PER_SHAPE = 20
REPEATS = 200

SHAPES = {
    "ema": (
        "when: >\n  config.model_ema and not config.model_ema_warmup\n  and derived.ema_init_share > {t}\n"
        "  and series.train_loss.rel_drop > 0.1\n"
        "epochs: series.eval_top1.flat.epochs\nfor: 3\n"
        'confidence: "0.5 + 0.4 * derived.ema_init_share"\n'
        'evidence:\n  - "EMA decay {{{{ config.model_ema_decay }}}} holds {{{{ derived.ema_init_share | pct }}}} of the start"\n'
        "fix:\n  args: {{model_ema_warmup: true, model_ema_decay: '=round(1 - 10 / derived.updates_run, 5)'}}\n"
    ),
    "lr": (
        "when: config.lr >= {t} and not (series.train_loss.rel_drop > 0.2)\n"
        'evidence:\n  - "lr {{{{ config.lr }}}} with {{{{ config.opt }}}}"\n'
    ),
    "nan": (
        "when: any(e.kind == 'nonfinite' and e.epoch > {t} for e in events)\n"
        'evidence:\n  - "{{{{ events | length }}}} events"\n'
    ),
}


def python_equivalent(ns: dict, shape: str, t: float) -> str | None:
    c, d, s, ev = ns["config"], ns["derived"], ns["series"], ns["events"]
    if shape == "ema":
        if c["model_ema"] and not c["model_ema_warmup"] and d["ema_init_share"] > t and s["train_loss"]["rel_drop"] > 0.1:
            first, last = s["eval_top1"]["flat"]["epochs"]
            if last - first + 1 >= 3:
                _ = round(1 - 10 / d["updates_run"], 5), 0.5 + 0.4 * d["ema_init_share"]
                return f"EMA decay {c['model_ema_decay']} holds {d['ema_init_share'] * 100:.1f}% of the start"
        return None
    if shape == "lr":
        if c["lr"] >= t and not (s["train_loss"]["rel_drop"] > 0.2):
            return f"lr {c['lr']} with {c['opt']}"
        return None
    if any(e["kind"] == "nonfinite" and e["epoch"] > t for e in ev):
        return f"{len(ev)} events"
    return None


def main() -> None:
    namespace = {
        "config": {"model_ema": True, "model_ema_warmup": False, "model_ema_decay": 0.9999, "lr": 0.5, "opt": "sgd"},
        "derived": {"ema_init_share": 0.96, "updates_run": 384},
        "series": {"train_loss": {"rel_drop": 0.7}, "eval_top1": {"flat": {"epochs": [0, 11]}}},
        "events": [{"kind": "nonfinite", "epoch": e} for e in range(5, 12)],
    }
    thresholds = [i / N_PER_SHAPE for i in range(N_PER_SHAPE)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for shape, body in SHAPES.items():
            for i, t in enumerate(thresholds):
                rule_id = f"{shape}-{i}"
                header = f"id: {rule_id}\ntitle: bench\ncause: lr-too-high\nseverity: warning\n"
                (root / f"{rule_id}.yaml").write_text(header + body.format(t=t * (10 if shape == "nan" else 1)))
        files = sorted(root.glob("*.yaml"))

        start = time.perf_counter()
        for _ in range(5):
            for f in files:
                yaml.safe_load(f.read_text())
        t_yaml = (time.perf_counter() - start) / 5
        start = time.perf_counter()
        for _ in range(5):
            pack = load_rules([root])
        t_load = (time.perf_counter() - start) / 5
        assert pack.errors == () and len(pack.rules) == len(files), pack.errors

        start = time.perf_counter()
        for _ in range(REPEATS):
            result = evaluate(pack, namespace)
        t_eval = (time.perf_counter() - start) / REPEATS
        assert result.warnings == ()

        start = time.perf_counter()
        for _ in range(REPEATS):
            fired = [x for shape in SHAPES for t in thresholds
                     if (x := python_equivalent(namespace, shape, t * (10 if shape == "nan" else 1)))]
        t_python = (time.perf_counter() - start) / REPEATS
        assert len(fired) == len(result.findings), (len(fired), len(result.findings))

    n = len(files)
    print(f"rule pack load ({n} rules): {t_load / t_yaml:.1f}x the time of yaml.safe_load alone "
          f"({t_load * 1000:.0f} ms; target <= 15x)")
    print(f"rule evaluation ({n} rules, {len(result.findings)} fire): {t_eval / t_python:.0f}x the time of the "
          f"same checks hand-written in Python ({t_eval * 1000:.2f} ms per run; target <= 200x, i.e. well under "
          f"a second for any realistic pack)")


if __name__ == "__main__":
    main()
