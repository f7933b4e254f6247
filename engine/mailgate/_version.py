"""The single place that states mailgate's version."""

__version__ = "0.1.0"
