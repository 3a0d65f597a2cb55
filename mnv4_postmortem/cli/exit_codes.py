"""Exit codes, in one place (documented in README.md).

0  the run was read (and, for ``report --fail-on``, no finding at or above the threshold)
1  ``report --fail-on``: a finding at or above the threshold; ``rules test|validate``: a failure
2  usage error, or an input with nothing usable left
3  internal error (a bug in mnv4-postmortem; set MNV4_DEBUG=1 for the traceback)
4  ``report``: nothing to judge: the run was read, but it lacks the data the main symptom checks need (a train
   or eval curve over a few epochs; analyzer/coverage.py), so "no problem found" would mean nothing; the report
   says what would be needed. ``batch --fail-on-nothing-to-judge``: some run had nothing to judge.
   Distinct from 2 (nothing readable at all) and from 1 (a finding at or above --fail-on, which wins).
130 interrupted (Ctrl-C): what finished is kept (``reproduce``, ``batch``), the shell's 128 + SIGINT
"""

OK = 0
FINDINGS = 1
UNUSABLE = 2
INTERNAL = 3
INTERRUPTED = 130
NOTHING_TO_JUDGE = 4
