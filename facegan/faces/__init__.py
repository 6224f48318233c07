"""Faces in photos: the aligned-face geometry, finding and aligning faces, moving pixels between a photo and an aligned face.

The map of the wings and what each may import: docs/design.md, "The house"."""
