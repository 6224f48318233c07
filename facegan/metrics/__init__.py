"""Measuring images: quality metrics and their conventions, how each metric is printed, statistics for comparing runs.

The map of the wings and what each may import: docs/design.md, "The house"."""
