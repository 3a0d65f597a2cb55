"""Imported once in the batch's fork server (``execute.PRELOAD``), so that every worker forked from it starts
with what each would otherwise build for itself on its first run: the analysis modules, the shipped rule
pack (parsed and compiled), the pretrained-config table and the batch renderers.

Import side effects are the only hook a fork server offers (``set_forkserver_preload`` imports modules by
name), hence a module that does its work when imported. A failure here is not fatal: the worker then
loads what it needs on its first run, as it would without a preload.
"""

from __future__ import annotations

import gc


def warm() -> None:
    from mnv4_postmortem.analyzer.batch import rows
    from mnv4_postmortem.analyzer.features.input_size import pretrained_input_size
    from mnv4_postmortem.analyzer.render import renderer_module
    from mnv4_postmortem.analyzer.session import AnalyzerOptions

    # The default session (shipped rules, what every batch without --rules uses), with its pack loaded
    # now: rows._session caches it per process, so the forked workers inherit it ready.
    rows._session(AnalyzerOptions()).pack
    pretrained_input_size("resnet50")  # reads the table once
    for name in ("text", "json"):
        renderer_module("batch", name)


try:
    warm()
except Exception:  # noqa: BLE001 - the workers load on demand instead
    pass
# The objects loaded above live for the whole batch in every worker: move them out of the garbage
# collector's generations, so collections in the workers neither scan them nor touch (copy) their pages.
gc.freeze()
