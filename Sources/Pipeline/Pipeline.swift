// Pipeline stage: see docs/algorithms.md.
