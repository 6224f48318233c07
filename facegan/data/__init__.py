"""Datasets: preparing and packing faces once, loading training batches, masks, super-resolution degradations.

The map of the wings and what each may import: docs/design.md, "The house"."""
