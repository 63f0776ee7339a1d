"""The ``crimelens`` command line (Typer). Each command parses, calls the core, and prints."""
