"""The ``fakeblock`` command line: one typer app and its commands."""
