"""Loopback stand-ins for the platforms, one module per platform, behaving as platforms.md says."""
