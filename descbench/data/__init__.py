"""Data files shipped with descbench (read with ``importlib.resources``)."""
