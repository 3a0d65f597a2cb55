"""mnv4-postmortem: post-mortem analysis of timm training runs.

The package is one import namespace. Stages, left to right:
``analyzer.ingest`` -> ``analyzer.model.Run`` -> ``analyzer.detect`` -> ``analyzer.features``
-> ``analyzer.engine`` -> ``analyzer.findings`` -> ``analyzer.render``.

The public API is the session (``analyzer/session.py``)::

    from mnv4_postmortem import Analyzer, AnalyzerOptions, diagnose, load_run

    diagnosis = Analyzer(AnalyzerOptions.of(["my-rules"])).analyze("path/to/run")
    diagnosis = diagnose(load_run("path/to/run"))
"""

__version__ = "0.1.0"

_PUBLIC = ("Analyzer", "AnalyzerOptions", "load_run", "diagnose")
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    # Loaded on first use, so `mnv4-postmortem --help` and `import mnv4_postmortem` stay light.
    if name in _PUBLIC:
        from mnv4_postmortem.analyzer import session

        return getattr(session, name)
    raise AttributeError(f"module 'mnv4_postmortem' has no attribute {name!r}")
