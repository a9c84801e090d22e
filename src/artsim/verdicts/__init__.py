"""Verdicts: how a search result is graded and where the thresholds come from. Pure: numbers
in, grades out, below evaluation and the index.

- :mod:`~artsim.verdicts.grades`: the grades (copy, derived, related, unrelated), the open-set
  calibration they are read from, fitting a task's thresholds;
- :mod:`~artsim.verdicts.openset`: the open-set figures (ISC micro AP, recall at precision),
  thresholds at a distractor rate, isotonic probabilities, binomial intervals;
- :mod:`~artsim.verdicts.source`: which calibration applies (an index's own, or a run's).

Fitting on a collection needs an index: :mod:`artsim.index.calibrate`; the report's section is
:mod:`artsim.report.verdicts`.
"""
