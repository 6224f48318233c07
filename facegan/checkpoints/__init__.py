"""Trained models on disk: the checkpoint file, the bundled models, the typed Checkpoint every command loads.

The map of the wings and what each may import: docs/design.md, "The house"."""
