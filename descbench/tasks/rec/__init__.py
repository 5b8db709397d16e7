"""descbench.tasks.rec.module."""
