"""Language-model backends: :mod:`.base` (the interface and the registry), one module per backend."""

from descbench.descriptions.llm.backends.base import BACKENDS, Backend, check_number, register_backend
from descbench.descriptions.llm.backends.local_model import LocalBackend, default_gguf_path
from descbench.descriptions.llm.backends.openai_api import OpenAIBackend

__all__ = [
    "BACKENDS",
    "Backend",
    "LocalBackend",
    "OpenAIBackend",
    "check_number",
    "default_gguf_path",
    "register_backend",
]
