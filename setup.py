"""The packages: every folder of descbench/, and the Hydra configs of the repository root (conf/) carried
in the wheel as descbench/conf, where descbench.shell.config finds them after a non-editable install.
Everything else about the build is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["descbench*"]), "descbench.conf"],
    package_dir={"descbench.conf": "conf"},
)
