"""Exit codes, in one place (documented in README.md).

0  the run was read (and, for ``report --fail-on``, no finding at or above the threshold)
1  ``report --fail-on``: a finding at or above the threshold; ``rules test|validate``: a failure
2  usage error, or an input with nothing usable left
3  internal error (a bug in mnv4-postmortem; set MNV4_DEBUG=1 for the traceback)
130  interrupted (Ctrl-C): what finished is kept (``reproduce``, ``batch``), the shell's 128 + SIGINT
"""

OK = 0
FINDINGS = 1
UNUSABLE = 2
INTERNAL = 3
INTERRUPTED = 130
