"""Report layer: training reports, run comparisons and split sweeps, in English and Spanish."""
