"""Whole-process timing shared by the benches: the best wall time and the best CPU time (user+sys of the
child) over repeats. CPU time is printed beside wall time because the benches run on machines shared
with other work, where wall time alone says more about the neighbours than about the code."""

from __future__ import annotations

import math
import os
import subprocess
import time


def time_process(command: list[str], repeat: int) -> tuple[float, float, subprocess.CompletedProcess]:
    """Best wall, best CPU of ``repeat`` runs of ``command``, and the last run's result."""
    best_wall, best_cpu, result = math.inf, math.inf, None
    for _ in range(repeat):
        before = os.times()
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        best_wall = min(best_wall, time.perf_counter() - start)
        after = os.times()
        best_cpu = min(best_cpu, after.children_user - before.children_user + after.children_system - before.children_system)
    assert result is not None, "repeat must be at least 1"
    return best_wall, best_cpu, result
