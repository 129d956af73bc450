"""dlrun: run, understand and compare fully-connected neural-network experiments."""

__version__ = "0.1.0"
