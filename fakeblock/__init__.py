"""fakeblock: real-time facial emotion recognition as a multiprocess ZeroMQ pipeline."""

__version__ = "0.1.0"
