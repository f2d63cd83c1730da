"""Allow ``python -m fakeblock``."""

from fakeblock.common.cli import main

main()
