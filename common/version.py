"""The version of fakeblock, in one place: ``fakeblock.__version__`` and ``fakeblock --version`` read it here.

It lives in the shared core so the CLI (the control layer) can name it without importing
the package entry, which the layering rules keep above every layer.
"""

VERSION = "0.1.0"
