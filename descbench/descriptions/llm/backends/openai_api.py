"""``describe/backend=openai``: the OpenAI API or any OpenAI-compatible server (vLLM, llama.cpp server, Ollama)."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from descbench.core.choices import Choice
from descbench.core.errors import BackendError, ConfigError
from descbench.descriptions.llm.backends.base import check_number, register_backend, shorten
from descbench.descriptions.llm.limits import deadline_http_client
from descbench.descriptions.llm.prompts import to_chat_messages

log = logging.getLogger(__name__)


class Api(Choice):
    """Which endpoint of the server answers: ``/v1/completions`` (continues the prompt) or ``/v1/chat/completions``."""

    completions = "completions"
    chat = "chat"


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


@register_backend("openai")
class OpenAIBackend:
    """The OpenAI API or any OpenAI-compatible server (vLLM, llama.cpp server, Ollama) via ``base_url``.

    The API key is read from the environment variable named by ``api_key_env`` when the
    client is created and is kept only inside the client: it is not an attribute of this
    object and never part of its repr or identity. Retries (429, 5xx, timeouts) are the
    ``openai`` client's own: ``max_retries`` attempts with exponential backoff and
    jitter, ``retry_delay_scale`` multiplying its waits. ``timeout`` is a deadline for each request, from
    connecting to the answer's last byte (:func:`descbench.descriptions.llm.limits.deadline_http_client`), not a
    bound on each read: a prompt takes at most ``(max_retries + 1) x timeout`` plus the backoff waits.
    """

    max_concurrency = 64

    def __init__(
        self,
        model: str = "gpt-3.5-turbo-instruct",
        *,
        api: Api = Api.completions,
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
        api = Api.parse(api, "describe.backend.api")
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise ConfigError(f"describe.backend.max_retries must be an integer >= 0, got {max_retries!r}")
        self.model = model
        self.api = api
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.temperature = check_number("temperature", temperature, 0.0)
        self.top_p = None if top_p is None else check_number("top_p", top_p, 0.0)
        self.max_tokens = int(check_number("max_tokens", max_tokens, 1.0, integer=True))
        self.seed = seed
        self.stop = list(stop) if stop else None
        self.timeout = check_number("timeout", timeout, 0.0, strict=True)
        self.max_retries = max_retries
        self.retry_delay_scale = check_number("retry_delay_scale", retry_delay_scale, 0.0)
        self.continues_prompt = api == "completions"
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, api={self.api.value!r}, base_url={self.base_url!r})"

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
                    api_key=key,
                    base_url=self.base_url,
                    timeout=self.timeout,
                    max_retries=self.max_retries,
                    http_client=deadline_http_client(self.timeout),  # timeout: a deadline per request
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
                f"(model {self.model!r}, {self.api} API): {shorten(e.message)}"
            ) from None
        except openai.APITimeoutError:
            raise BackendError(
                f"OpenAIBackend: request timed out ({self.timeout:g} s) after {self.max_retries} retries "
                f"(model {self.model!r}, {self.api} API): no complete answer within describe.backend.timeout "
                "seconds, a deadline for each request"
            ) from None
        except openai.APIConnectionError as e:
            raise BackendError(
                f"OpenAIBackend: cannot connect to the server after {self.max_retries} retries "
                f"(model {self.model!r}, {self.api} API): {shorten(str(e))}"
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
