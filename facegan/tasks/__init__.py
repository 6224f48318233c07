"""The tasks (inpainting, super-resolution): the interface every task implements, the table of tasks, recipes.

The map of the wings and what each may import: docs/design.md, "The house"."""
