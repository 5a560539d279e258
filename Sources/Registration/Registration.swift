// Registration stage: see docs/algorithms.md.
