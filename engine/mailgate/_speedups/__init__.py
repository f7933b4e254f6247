"""Compiled hot paths built from pyx/ (one extension module per .pyx file)."""
