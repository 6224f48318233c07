"""`facegan train`: the training loop, its run state, log, samples and the torchrun set-up.

The map of the wings and what each may import: docs/design.md, "The house"."""
