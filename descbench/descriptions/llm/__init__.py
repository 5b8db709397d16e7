"""Description generation by a language model under prompt options (SPEC §3).

No Hydra or Lightning here: the ``llm`` describe config builds a backend and calls
:func:`generate_descriptions`; tests inject their own backend.
"""

from descbench.core.errors import BackendError
from descbench.descriptions.llm.backends import Backend, LocalBackend, OpenAIBackend, default_gguf_path
from descbench.descriptions.llm.cache import DescriptionCache, cache_key
from descbench.descriptions.llm.generate import export_descriptors, generate_descriptions
from descbench.descriptions.llm.parse import parse_descriptors
from descbench.descriptions.llm.prompts import (
    PromptError,
    bank_names,
    build_messages,
    build_prompt,
    load_bank,
    to_chat_messages,
)
from descbench.descriptions.llm.source import dry_run_prompt, read_class_list

__all__ = [
    "Backend",
    "BackendError",
    "DescriptionCache",
    "LocalBackend",
    "OpenAIBackend",
    "PromptError",
    "bank_names",
    "build_messages",
    "build_prompt",
    "cache_key",
    "default_gguf_path",
    "dry_run_prompt",
    "export_descriptors",
    "generate_descriptions",
    "load_bank",
    "parse_descriptors",
    "read_class_list",
    "to_chat_messages",
]
