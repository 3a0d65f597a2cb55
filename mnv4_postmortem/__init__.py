"""mnv4-postmortem: post-mortem analysis of timm training runs.

The package is one import namespace. Stages, left to right:
``analyzer.ingest`` -> ``analyzer.model.Run`` -> ``analyzer.detect`` -> ``analyzer.features``
-> ``analyzer.engine`` -> ``analyzer.findings`` -> ``analyzer.render``.
"""

__version__ = "0.1.0"
