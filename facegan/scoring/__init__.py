"""`facegan eval`: scoring a model beside the no-model references, its JSON, files and tables; the independent judge.

The map of the wings and what each may import: docs/design.md, "The house"."""
