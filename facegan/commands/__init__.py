"""One module per `facegan` subcommand (typer functions; heavy imports inside them)."""
