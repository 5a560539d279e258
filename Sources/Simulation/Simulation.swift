// Simulation stage: see docs/algorithms.md.
