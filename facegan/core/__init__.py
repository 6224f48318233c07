"""What every wing shares: user errors, atomic writes, output locks, the device choice, YAML files, pictures and tables.

The map of the wings and what each may import: docs/design.md, "The house"."""
