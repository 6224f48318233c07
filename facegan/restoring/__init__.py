"""`facegan restore` and `facegan export`: restorers (PyTorch, ONNX), the photo pipeline, the export.

The map of the wings and what each may import: docs/design.md, "The house"."""
