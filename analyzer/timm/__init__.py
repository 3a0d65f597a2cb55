"""The one owner of timm knowledge: versions, per-era defaults, recipe arithmetic, train.py command lines.

A ground-floor package: it imports only ``analyzer/model.py``, the standard library and numpy, so
every stage (ingest, detect, features, engine, the runner) may read it and none is read by it.
"""
