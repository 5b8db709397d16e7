"""descbench.shell."""
