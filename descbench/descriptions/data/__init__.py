"""Data files of the description sources (key aliases)."""
