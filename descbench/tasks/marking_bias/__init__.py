"""descbench.tasks.marking_bias."""
