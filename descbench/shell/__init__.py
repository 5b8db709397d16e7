"""The shell's configuration layer: where the Hydra configs live and how they are composed (``config``), the
schemas derived from signatures (``schemas``), the checks composition cannot do (``checks``), command-line
helpers (``cli``) and W&B (``tracking``)."""
