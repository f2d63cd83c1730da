"""The control plane: the CLI, the supervisor, the site file, status, metrics and report."""
