"""The control plane: the CLI, the supervisor and its workers, status, and the site file.

It uses the stages and the shared core; nothing below it imports it.
"""
