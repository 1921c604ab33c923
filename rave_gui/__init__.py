"""RAVE GUI: train RAVE models from a desktop window."""

__version__ = "0.1.0"
