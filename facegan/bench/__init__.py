"""`facegan bench`: how fast preparing and training run on this machine.

The map of the wings and what each may import: docs/design.md, "The house"."""
