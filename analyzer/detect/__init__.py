"""Detection stage: statistics over a normalized ``Run``, before any rule interprets them.

``detect(run)`` returns a ``Detection``: change-point segments per metric (``segments.py``: PELT, checked against ruptures,
with a piecewise-linear cost and a BIC penalty from the data), pattern facts (``patterns.py``: exact
stalls, chance level, non-finite values, spikes, explosions, generalization gap, EMA gap, incomplete run)
and the LR schedule compared with the config (``schedule.py``). ``series.py`` decides which NaNs are
values and which are merely missing; ``metrics.py`` knows metric directions and chance levels.

Data flows one way: this package reads ``model.py`` only.
"""

from mnv4_postmortem.analyzer.detect.detection import Detection, detect
from mnv4_postmortem.analyzer.detect.metrics import chance_tolerance, chance_value, higher_is_better
from mnv4_postmortem.analyzer.detect.patterns import ChanceLevel, EmaGap, ExactStall, Explosion, GeneralizationGap
from mnv4_postmortem.analyzer.detect.patterns import Incomplete, NonFinite, Spike
from mnv4_postmortem.analyzer.detect.schedule import Schedule
from mnv4_postmortem.analyzer.detect.segments import Segment, segment_series

__all__ = [
    "ChanceLevel",
    "Detection",
    "EmaGap",
    "ExactStall",
    "Explosion",
    "GeneralizationGap",
    "Incomplete",
    "NonFinite",
    "Schedule",
    "Segment",
    "Spike",
    "chance_tolerance",
    "chance_value",
    "detect",
    "higher_is_better",
    "segment_series",
]
