"""descbench.core."""
