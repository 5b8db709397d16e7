"""Curated class names per dataset: <dataset>.tsv, one "class id<TAB>name" per line, source in the header."""
