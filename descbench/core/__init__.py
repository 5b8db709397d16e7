"""The core part: no framework (no Lightning, no Hydra) — tensors, images, files, and the computations every
task shares (see ARCHITECTURE.md)."""
