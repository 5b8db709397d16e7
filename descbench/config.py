"""Where the Hydra configs live (inside the package) and how entry points and tests compose them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

#: the primary configs and config groups, shipped inside the package (a wheel install finds them)
CONFIG_DIR = Path(__file__).resolve().parent / "conf"


def register_configs() -> None:
    """Put the structured-config schemas into Hydra's ConfigStore (idempotent)."""
    from descbench import schemas

    schemas.register()


def compose_config(
    overrides: Sequence[str] = (), config_name: str = "eval", return_hydra_config: bool = False
) -> DictConfig:
    """The config that ``python -m descbench.eval OVERRIDES`` would compose (``a..b`` ranges expanded)."""
    from hydra import compose, initialize_config_dir

    from descbench.cli import expand_ranges

    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name, overrides=expand_ranges(list(overrides)), return_hydra_config=return_hydra_config)


def hydra_entry(task: Callable[[DictConfig], Any], config_name: str) -> Callable[[], Any]:
    """``task`` wrapped by ``hydra.main`` on the packaged configs, schemas registered first."""
    import hydra

    register_configs()
    return hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)(task)


def build(node: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(node, **kwargs)``, with a user error raised by the built object surfaced as
    itself (Hydra wraps it in ``InstantiationException``, whose message is a repr of the call)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from descbench.errors import UserError

    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause: BaseException | None = err
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise
