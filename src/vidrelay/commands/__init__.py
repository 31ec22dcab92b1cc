"""The `vidrelay` subcommands, one module per area; each registers its parsers and the function that runs them."""
