"""Example banks for the description prompts (data files: project.yaml, study.yaml)."""
