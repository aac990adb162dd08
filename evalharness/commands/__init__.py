"""One module per ``evalharness`` subcommand (see :data:`evalharness.cli.SUBCOMMANDS`)."""
