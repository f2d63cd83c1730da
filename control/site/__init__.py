"""The site file: which host runs which stage, where each binds, and with which keys."""
