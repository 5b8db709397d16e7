"""Experiment loggers (W&B offline without a key, CSV, none) and secret redaction."""

from __future__ import annotations

import netrc
import os
import re
from collections.abc import Mapping
from typing import Any

SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password)", re.IGNORECASE)
SECRET_ENV = ("OPENAI_API_KEY", "WANDB_API_KEY", "HF_TOKEN", "ANTHROPIC_API_KEY")


def redact(value: Any) -> Any:
    """A copy of a config with secret-looking keys and known secret values replaced by ``***``."""
    secrets = {os.environ[k] for k in SECRET_ENV if os.environ.get(k)}
    if isinstance(value, Mapping):
        return {k: "***" if SECRET_KEY.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "***")
    return value


def wandb_has_credentials() -> bool:
    """A key in the environment or from a prior ``wandb login`` (netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        auth = netrc.netrc().authenticators("api.wandb.ai")
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return bool(auth and auth[2])


def wandb_offline(requested: str | bool | None) -> bool:
    """``auto``: offline when no credentials are found or WANDB_MODE says so."""
    if isinstance(requested, bool):
        return requested
    mode = os.environ.get("WANDB_MODE", "")
    if mode in ("offline", "disabled", "dryrun"):
        return True
    return not wandb_has_credentials()
