// ColumnIntensities stage: see docs/algorithms.md.
