"""CLIP backbones: open_clip names with pretrained tags, local checkpoints, local-dir bundles.

A named model never silently gets random weights: random initialisation must be asked
for with ``random_init=True`` and is then labelled as such in every result.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from descbench.core.errors import BackboneError


def _import_without_wandb():
    """``import open_clip`` with ``wandb`` hidden unless something imported it already: timm (open_clip's
    dependency) imports W&B whenever it is installed, for its own training scripts' logging, about a second of
    every process start; a run that logs to W&B imports it itself, later, in full."""
    import sys

    hidden = "wandb" not in sys.modules
    if hidden:
        sys.modules["wandb"] = None  # an ImportError for this import only; timm records "no wandb"
    try:
        import open_clip
    finally:
        if hidden and sys.modules.get("wandb", 0) is None:
            del sys.modules["wandb"]
    return open_clip


open_clip = _import_without_wandb()

log = logging.getLogger(__name__)

MODEL_CONFIG_DIR = Path(__file__).parent / "model_configs"
_registered = False


def register_model_configs() -> None:
    """Add the project's model configs (``model_configs/*.json``: the tiny test model) to open_clip."""
    global _registered
    if _registered:
        return
    for path in sorted(MODEL_CONFIG_DIR.glob("*.json")):
        open_clip.add_model_config(path)
    _registered = True


def resolve_package_path(text: str) -> str:
    """``pkg:descbench.world/model`` -> the folder inside the installed package; other text unchanged."""
    if not text.startswith("pkg:"):
        return text
    package, _, rest = text[4:].partition("/")
    from importlib import resources

    return str(Path(str(resources.files(package))) / rest)


def model_input_size(model: str) -> int:
    """The side of ``model``'s square input (an open_clip name, a project config or a ``local-dir:`` bundle), read
    from its config without loading weights: what a report needs to redraw the marked inputs a run scored."""
    import json

    register_model_configs()
    if model.startswith("local-dir:"):
        path = Path(resolve_package_path(model.removeprefix("local-dir:"))) / "open_clip_config.json"
        try:
            config = json.loads(path.read_text(encoding="utf-8"))["model_cfg"]
        except (OSError, ValueError, KeyError) as err:
            raise BackboneError(f"{path}: no model config to read the input size from ({err})") from None
    else:
        config = open_clip.get_model_config(model)
        if config is None:
            raise BackboneError(f"unknown backbone model {model!r}: no open_clip config to read the input size from")
    size = config["vision_cfg"]["image_size"]
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def file_identity(path: Path) -> str:
    """Content hash of a weights file (full sha256 up to 64 MiB, else size + head/tail hash)."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        if size <= 64 * 2**20:
            digest.update(handle.read())
        else:
            digest.update(handle.read(8 * 2**20))
            handle.seek(-8 * 2**20, os.SEEK_END)
            digest.update(handle.read())
            digest.update(str(size).encode())
    return digest.hexdigest()[:16]


class Backbone(nn.Module):
    """An open_clip model with its preprocessing, tokenizer and a stable identity for caches."""

    def __init__(
        self,
        model: nn.Module,
        preprocess: Callable,
        tokenizer: Callable,
        *,
        name: str,
        pretrained: str | None,
        weights: str,
        identity: str,
    ) -> None:
        super().__init__()
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.name = name
        self.pretrained = pretrained
        self.weights = weights
        self.identity = identity
        size = model.visual.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.exp())

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised image embeddings, float32."""
        return F.normalize(self.model.encode_image(images).float(), dim=-1)

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """L2-normalised text embeddings of ``texts``, batched, on the model's device.

        A long list (80 templates x 1,000 classes, CuPL's sentences) shows a progress bar.
        """
        from tqdm.auto import tqdm

        device = next(self.model.parameters()).device
        chunks = []
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc="encoding texts", unit="batch", disable=len(texts) <= 8 * batch_size):
            tokens = self.tokenizer(list(texts[start : start + batch_size])).to(device)
            chunks.append(F.normalize(self.model.encode_text(tokens).float(), dim=-1))
        if not chunks:
            return torch.empty(0, self.embed_dim, device=device)
        return torch.cat(chunks)

    @property
    def embed_dim(self) -> int:
        return int(self.model.text_projection.shape[-1]) if hasattr(self.model, "text_projection") else -1

    def describe(self) -> dict[str, str | None]:
        """What the results record about this backbone."""
        return {"backbone": self.name, "pretrained": self.pretrained, "weights": self.weights}


_LOADED: dict[tuple, Backbone] = {}


def load_backbone(
    model: str,
    pretrained: str | None = None,
    *,
    random_init: bool = False,
    seed: int = 0,
    cache_dir: str | None = None,
    weights_file: str | None = None,
) -> Backbone:
    """:func:`build_backbone`, loaded once per process (the jobs of a multirun share it)."""
    key = (model, pretrained, random_init, seed if random_init else None, weights_file)  # seed: random weights only
    if key not in _LOADED:
        if len(_LOADED) >= 2:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = build_backbone(
            model, pretrained, random_init=random_init, seed=seed, cache_dir=cache_dir, weights_file=weights_file
        )
    return _LOADED[key]


def build_backbone(
    model: str,
    pretrained: str | None = None,
    *,
    random_init: bool = False,
    seed: int = 0,
    cache_dir: str | None = None,
    weights_file: str | None = None,
) -> Backbone:
    """Build a backbone.

    ``model`` is an open_clip model name (``ViT-B-32``), a registered project config
    (``descbench-tiny``) or a bundle ``local-dir:/path`` holding ``open_clip_config.json``
    and weights (``weights_file`` names the file when the bundle has several). ``pretrained`` is a tag (``openai``, ``laion2b_s34b_b79k``) or a checkpoint
    file. With neither, ``random_init=True`` must be set explicitly. ``random_init=True`` is honoured whatever
    ``pretrained`` says (a named config's tag, a bundle's weights file): the architecture with random weights
    (seeded), recorded as such (``pretrained`` None, ``weights`` "random (seed N)").
    """
    register_model_configs()
    if model.startswith("local-dir:"):
        bundle = "local-dir:" + resolve_package_path(model.removeprefix("local-dir:"))
        return _load_bundle(bundle, weights_file, random_init=random_init, seed=seed)
    if random_init and pretrained is not None:
        log.info("backbone.random_init=true: random weights (seed %d), not the pretrained %r", seed, pretrained)
        pretrained = None
    if pretrained is not None:
        pretrained = resolve_package_path(pretrained)
    if model not in open_clip.list_models():
        raise BackboneError(
            f"unknown backbone model {model!r}: use an open_clip name (open_clip.list_models()), "
            f"a project config ({', '.join(sorted(p.stem for p in MODEL_CONFIG_DIR.glob('*.json')))}) "
            "or local-dir:/path/to/bundle"
        )
    if pretrained is None:
        if not random_init:
            raise BackboneError(
                f"backbone {model!r} has no weights: set backbone.pretrained to a tag "
                f"({', '.join(open_clip.list_pretrained_tags_by_model(model)) or 'none known'}) or a checkpoint "
                "file, or set backbone.random_init=true to evaluate random weights on purpose"
            )
        torch.manual_seed(seed)
        clip, _, preprocess = open_clip.create_model_and_transforms(model, pretrained=None)
        identity = f"{model}:random:{seed}"
        weights = f"random (seed {seed})"
    else:
        is_file = os.path.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))
        if is_file and not Path(pretrained).is_file():
            raise BackboneError(f"checkpoint file not found: {pretrained} (backbone.pretrained)")
        if is_file:
            check_weights_file(Path(pretrained), "checkpoint")
        if not is_file and pretrained not in open_clip.list_pretrained_tags_by_model(model):
            raise BackboneError(
                f"unknown pretrained tag {pretrained!r} for {model}: known tags are "
                f"{open_clip.list_pretrained_tags_by_model(model)}, or give a checkpoint file path"
            )
        try:
            with _quiet_open_clip_logs():  # its own log lines would repeat the one-line error below
                clip, _, preprocess = open_clip.create_model_and_transforms(
                    model, pretrained=pretrained, require_pretrained=True, cache_dir=cache_dir
                )
        except Exception as err:  # a bad file raises RuntimeError, UnpicklingError, SafetensorError, ...
            if is_file:
                raise BackboneError(
                    f"checkpoint {pretrained} does not match the architecture {model}: {_flat(err)}"
                ) from err
            if "download" in str(err).lower() or "connection" in str(err).lower():
                raise BackboneError(
                    f"weights {model}/{pretrained} are not on this machine and could not be downloaded: get the "
                    "checkpoint file elsewhere and set backbone.pretrained=/path/to/file (for an extra backbone: "
                    "task.extra_backbones.N.pretrained=/path/to/file)"
                ) from err
            raise BackboneError(f"weights {model}/{pretrained} could not be loaded: {_first_line(err)}") from err
        identity = f"{model}:{file_identity(Path(pretrained)) if is_file else pretrained}"
        weights = "pretrained"
    return Backbone(
        clip,
        preprocess,
        open_clip.get_tokenizer(model),
        name=model,
        pretrained=pretrained,
        weights=weights,
        identity=identity,
    )


#: the weight-file patterns open_clip's ``local-dir:`` bundles are searched for
BUNDLE_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pth")


def bundle_weights_file(path: Path, weights_file: str | None = None) -> Path:
    """The one weights file of a bundle: the named one, or the only file open_clip would read; else an error."""
    if weights_file:
        chosen = path / weights_file
        if not chosen.is_file():
            raise BackboneError(f"backbone.weights_file={weights_file!r} is not a file in the bundle {path}")
        return chosen
    candidates = sorted({p for pattern in BUNDLE_WEIGHT_PATTERNS for p in path.glob(pattern)})
    if len(candidates) == 1:
        return candidates[0]
    others = sorted(p.name for p in path.iterdir() if p.is_file() and p.name != "open_clip_config.json")
    if not candidates:
        raise BackboneError(
            f"model bundle {path} has no weights file that open_clip reads ({', '.join(BUNDLE_WEIGHT_PATTERNS)}); "
            f"found: {', '.join(others) or 'nothing'}: rename the weights to open_clip_model.safetensors "
            "(or .bin/.pth), or name the file with backbone.weights_file=NAME"
        )
    raise BackboneError(
        f"model bundle {path} has several weights files ({', '.join(p.name for p in candidates)}): name the one "
        "to load with backbone.weights_file=NAME"
    )


def check_weights_file(path: Path, what: str) -> None:
    """A weights file must be readable as one before it is loaded: a safetensors file with a whole header, a
    PyTorch zip archive with its central directory, or a legacy pickle; else one line saying what it is not.

    Reads only headers, so that a garbled file is told apart from weights of another architecture.
    """
    import zipfile

    problem = None
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
        if not head:
            problem = "it is empty"
        elif path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt"):
                pass
        elif zipfile.is_zipfile(path):
            zipfile.ZipFile(path).close()
        elif not head.startswith(b"\x80"):  # neither a zip archive nor a pickle: not torch.save's output
            problem = "it is neither a safetensors file nor a PyTorch checkpoint (a zip archive or a pickle)"
    except Exception as err:  # safetensors/zipfile raise several types for a cut or garbled file
        problem = _first_line(err)
    if problem is not None:
        raise BackboneError(
            f"{what} {path} cannot be read as weights ({problem}): is it whole, and a file written by "
            "torch.save or safetensors?"
        )


def _flat(err: BaseException, limit: int = 400) -> str:
    """The whole message on one line, cut at ``limit`` characters (torch lists the keys that differ)."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[:limit] + " ..."


def _load_bundle(model: str, weights_file: str | None = None, random_init: bool = False, seed: int = 0) -> Backbone:
    """A ``local-dir:`` bundle: ``open_clip_config.json`` plus exactly one weights file (or the one named); with
    ``random_init`` its architecture with random weights (seeded), no weights file read."""
    path = Path(model.removeprefix("local-dir:"))
    if not (path / "open_clip_config.json").is_file():
        raise BackboneError(f"{path} is not a model bundle: expected open_clip_config.json and weights in it")
    if random_init:
        torch.manual_seed(seed)
        try:
            with _quiet_open_clip_logs("initialized randomly"):
                clip, _, preprocess = open_clip.create_model_and_transforms(model, load_weights=False)
        except Exception as err:  # a bad config
            raise BackboneError(f"model bundle {path} could not be built: {_flat(err)}") from err
        return Backbone(
            clip,
            preprocess,
            open_clip.get_tokenizer(model),
            name=_bundle_name(path),
            pretrained=None,
            weights=f"random (seed {seed})",
            identity=f"{path.name}:{file_identity(path / 'open_clip_config.json')}:random:{seed}",  # the architecture's
        )
    chosen = bundle_weights_file(path, weights_file)
    check_weights_file(chosen, f"model bundle {path}: the weights file")
    try:
        # the architecture from the bundle, random weights at first; then the chosen file, strictly
        with _quiet_open_clip_logs("initialized randomly"):  # the weights come right after, from the chosen file
            clip, _, preprocess = open_clip.create_model_and_transforms(model, load_weights=False)
        open_clip.load_checkpoint(clip, str(chosen), strict=True)
    except Exception as err:  # open_clip/torch/safetensors raise many types for a bad file or config
        raise BackboneError(f"model bundle {path} could not be loaded from {chosen.name}: {_flat(err)}") from err
    return Backbone(
        clip,
        preprocess,
        open_clip.get_tokenizer(model),
        name=_bundle_name(path),
        pretrained=str(chosen),
        weights="pretrained",
        identity=f"{path.name}:{file_identity(chosen)}",
    )


def _bundle_name(path: Path) -> str:
    import json

    return json.loads((path / "open_clip_config.json").read_text()).get("name") or path.name


@contextmanager
def _quiet_open_clip_logs(*phrases: str):
    """Hide open_clip's root-logger lines that contain one of ``phrases`` (default: its download errors)."""
    phrases = phrases or ("Failed to download", "No pretrained weights loaded")

    def drop(record: logging.LogRecord) -> bool:
        return not any(p in record.getMessage() for p in phrases)

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__
