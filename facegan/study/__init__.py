"""`facegan ablate`: does a change really help? Specs, runs, paired results, the report.

The map of the wings and what each may import: docs/design.md, "The house"."""
