"""Allow ``python -m fakeblock``."""

from fakeblock.common.control.cli import main

main()
