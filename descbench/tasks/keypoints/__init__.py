"""descbench.tasks.keypoints.module."""
