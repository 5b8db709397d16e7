"""Where the Hydra configs live and how entry points and tests compose them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig


def _config_dir() -> Path:
    """``conf/`` at the repository root (a source checkout, an editable install), or the copy a wheel carries
    inside the package (``descbench/conf``: pyproject maps the root folder there)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "eval.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"no conf/eval.yaml beside or inside {package}: a broken install of descbench")


#: the primary configs and config groups
CONFIG_DIR = _config_dir()


def register_configs() -> None:
    """Put the structured-config schemas into Hydra's ConfigStore (idempotent)."""
    from descbench.shell import schemas

    schemas.register()


def compose_config(
    overrides: Sequence[str] = (), config_name: str = "eval", return_hydra_config: bool = False
) -> DictConfig:
    """The config that ``python -m descbench.eval OVERRIDES`` would compose (``a..b`` ranges expanded)."""
    from hydra import compose, initialize_config_dir

    from descbench.shell.cli import expand_ranges

    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name, overrides=expand_ranges(list(overrides)), return_hydra_config=return_hydra_config)


def hydra_entry(task: Callable[[DictConfig], Any], config_name: str) -> Callable[[], Any]:
    """``task`` wrapped by ``hydra.main`` on the packaged configs, schemas registered first."""
    import hydra

    register_configs()
    return hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)(task)


def hydra_error_message(err: BaseException) -> str:
    """Hydra's message for a config it could not compose (with OmegaConf's cause), as one line."""
    text = str(err).split("Config search path:")[0].replace("\n\t", ", ").replace(":, ", ": ")
    cause = err.__cause__
    if cause is not None and type(cause).__module__.startswith("omegaconf") and str(cause) not in text:
        text = f"{text.rstrip()}: {cause}"
    return " ".join(text.split()) or type(err).__name__


def run_entry(task: Callable[[DictConfig], Any], config_name: str) -> None:
    """An entry point's ``main``: ``a..b`` ranges expanded, Hydra run on the packaged configs, and a config
    Hydra cannot compose (a misspelled key, a wrong type) reported as one ``error:`` line with exit code 2
    like every other user error (``HYDRA_FULL_ERROR=1`` set by the user: Hydra's own output)."""
    import os
    import sys

    from hydra.errors import CompactHydraException
    from omegaconf.errors import OmegaConfBaseException

    from descbench.shell.cli import prepare_argv

    prepare_argv()
    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # raise instead of printing Hydra's multi-line report
    try:
        hydra_entry(task, config_name)()
    except (CompactHydraException, OmegaConfBaseException) as err:
        if full_error:
            raise
        print(f"error: {hydra_error_message(err)}", file=sys.stderr, flush=True)
        sys.exit(2)
    except OSError as err:  # Hydra creating the run or sweep dir (under a file, read-only, ...)
        if full_error or not _raised_by_hydra(err):
            raise
        print(
            f"error: cannot create the output dir {err.filename} ({err.strerror or err}): choose another with "
            "hydra.run.dir=... (hydra.sweep.dir=... for -m)",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(2)


def _raised_by_hydra(err: BaseException) -> bool:
    """Whether ``err`` comes from Hydra's own code (the innermost frame of Hydra or descbench is Hydra's), not
    from the task Hydra runs."""
    owner = None
    tb = err.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module.split(".")[0] in ("hydra", "descbench"):
            owner = module.split(".")[0]
        tb = tb.tb_next
    return owner == "hydra"


def build(node: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(node, **kwargs)``, with a user error raised by the built object surfaced as
    itself (Hydra wraps it in ``InstantiationException``, whose message is a repr of the call)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from descbench.core.errors import UserError

    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause: BaseException | None = err
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        raise


def build_then_call(node: Any, **data: Any) -> Any:
    """``build(node)`` as a partial, called with ``data``: a data set's classes and descriptors stay Python objects.

    Passed to :func:`build` directly, Hydra would merge them into the config first, copying every string into
    an OmegaConf node (about 10 s for 1,000 classes with 14 descriptors each).
    """
    return build(node, _partial_=True, _convert_="all")(**data)
