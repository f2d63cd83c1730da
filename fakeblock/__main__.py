"""Allow ``python -m fakeblock``."""

from fakeblock.control.cli.entry import main

main()
