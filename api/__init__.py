"""The Python API: ``fakeblock.Analyzer`` runs the pipeline's steps in the caller's process."""
