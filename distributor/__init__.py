"""Distributor: RSS and social distribution for news publishers."""

__version__ = "0.1.0"
