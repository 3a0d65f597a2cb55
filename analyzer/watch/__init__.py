"""Watching a run while it trains: incremental readers (``sources``), the live diagnosis and its changes
(``live``, ``tracker``), recipe predictions (``predict``), the ``watch`` loop (``follow``), the push API
(``monitor``) and the report's "visible from epoch N" (``timeline``)."""
