"""Ingest: a run directory in, one normalized :class:`~mnv4_postmortem.analyzer.model.Run` out.

``load_run(path)`` discovers the files, runs one parser per format and merges their results
(``merge.py``). Each parser keeps every good record before a bad one and reports what it
skipped as an ``IngestIssue``; only when nothing usable is left does ``load_run`` raise
``IngestError``.
"""

from mnv4_postmortem.analyzer.ingest.merge import load_run

__all__ = ["load_run"]
