"""Referring-expression comprehension with visual prompts (SPEC §4): framework-free core.

``prompts`` draws the markings, ``data`` reads the data sets, ``collages`` builds the embedded
demo, ``scoring`` holds the pure-torch scoring rules and ``engine`` runs them without Lightning.
"""
