"""Allow ``python -m fakeblock``."""

from fakeblock.control.cli.app import main

main()
