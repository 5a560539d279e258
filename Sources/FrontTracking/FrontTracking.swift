// FrontTracking stage: see docs/algorithms.md.
