"""Batch analysis: many run folders in, one row per run out, plus what separates flagged runs from healthy ones.

Stages: ``discover`` (which folders are runs) -> ``execute`` (a process pool or a Dask cluster runs
``rows.analyze_path`` on each) -> ``differs`` (config values that separate each cause's runs from the
healthy ones) -> ``outputs`` (runs.jsonl, runs.csv, index.html, overlays, Markdown summary).
"""
