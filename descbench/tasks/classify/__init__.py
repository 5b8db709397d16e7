"""descbench.tasks.classify.module."""
