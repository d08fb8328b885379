"""Kestrel: an open, trainable image recognition service."""

__version__ = "0.1.0"
