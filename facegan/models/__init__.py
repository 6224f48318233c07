"""The networks: generators, discriminators, identity networks, the VGG content loss, pretrained weight files.

The map of the wings and what each may import: docs/design.md, "The house"."""
