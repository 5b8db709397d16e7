"""Train the known-answer model of the shapes world and write its bundle.

    python -m descbench.world.train [--steps N --out DIR --seed S --batch-size B]
        [--size tiny|small|base --marking-share S --mark-colour red --mark-width 1-2 --filler single|multi]

A tiny open_clip model (ModifiedResNet image tower, 3-layer text tower, the standard
tokenizer) learns captions of procedurally drawn objects. Class names never appear in
the captions: descriptor-style captions use made-up names drawn from the tokenizer's
vocabulary instead, so the model learns to ignore the name and read the descriptor.
The loss is CLIP's contrastive loss with multiple positives: a caption counts as a
positive for every image in the batch whose described object satisfies it.

The defaults reproduce the shipped bundle's recipe (``descbench/world/model``); the other options are the
knobs of the emergence study (:mod:`descbench.world.emergence`): the model's capacity (``--size``), the
data seen (``--steps`` x ``--batch-size``), the share of training samples whose described object is circled
(``--marking-share``, exact per batch) and that circle's colour and width. Every bundle records them in its
``training.json`` and model card.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import open_clip
import torch
from torch.nn import functional as F

from descbench.core.files import write_atomic
from descbench.world import BUNDLE_DIR
from descbench.world.captions import FILLERS, TrainingRecipe, draw_training_batch
from descbench.world.check import write_model_card
from descbench.world.lexicon import ATTRIBUTES, vocabulary_words
from descbench.world.rendering import MARK_COLOURS, MarkingStyle
from descbench.world.samples import load_classes

log = logging.getLogger(__name__)

MODEL_NAME = "shapes-clip"  # the shipped model's open_clip name; other sizes get a suffix
MEAN = (0.48145466, 0.4578275, 0.40821073)  # open_clip's OPENAI_DATASET_MEAN / STD
STD = (0.26862954, 0.26130258, 0.27577711)
MODEL_CFG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "head_width": 16},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 48, "heads": 4, "layers": 3},
}
#: the capacities of the emergence study: image tower (ModifiedResNet width, blocks per stage), text tower
#: (width, layers), embedding; ``small`` is the shipped model. Seconds per step of batch 256 on 2 CPU cores:
#: tiny 0.34, small 0.50, base 1.2 (model only; drawing a batch takes 0.2 s in the data worker).
MODEL_SIZES = {
    "tiny": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 8, "head_width": 16},
        "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2},
    },
    "small": MODEL_CFG,
    "base": {
        "embed_dim": 96,
        "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 24, "head_width": 24},
        "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 4},
    },
}
DEFAULT_SIZE = "small"
PREPROCESS_CFG = {
    "size": 64,
    "mean": list(MEAN),
    "std": list(STD),
    "interpolation": "bicubic",
    "resize_mode": "shortest",
}


def pseudo_names(count: int = 4000, seed: int = 0) -> list[str]:
    """Made-up class names for descriptor captions: whole-word tokens of the tokenizer's vocabulary
    that are neither world words nor words of any class name."""
    banned = vocabulary_words() | {w for c in load_classes() for w in c["name"].lower().split()}
    tokenizer = open_clip.get_tokenizer("RN50")
    words = sorted(
        t[:-4]
        for t in tokenizer.encoder
        if t.endswith("</w>") and t[:-4].isalpha() and t[:-4].isascii() and 3 <= len(t) - 4 <= 10
    )
    words = [w for w in words if w not in banned and not any(w in b or b in w for b in banned if len(b) > 3)]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(words), size=min(count, len(words)), replace=False)
    singles = [words[i] for i in sorted(chosen)]
    # also two-word names, as most class names have two words
    pairs = [f"{singles[i]} {singles[(i * 7 + 3) % len(singles)]}" for i in range(0, len(singles), 2)]
    return singles + pairs


def model_name(size: str) -> str:
    """The open_clip name of a size's model (``shapes-clip`` for the shipped size)."""
    return MODEL_NAME if size == DEFAULT_SIZE else f"{MODEL_NAME}-{size}"


class CaptionBatches(torch.utils.data.IterableDataset):
    """Endless batches ``(images, tokens, attribute values, caption masks, captions, marked)``; batch k is drawn
    by :func:`~descbench.world.captions.draw_training_batch` from the seed (seed, k) alone."""

    def __init__(
        self, batch_size: int, seed: int, names: list[str], start: int = 0, recipe: TrainingRecipe | None = None
    ) -> None:
        self.batch_size, self.seed, self.names, self.start = batch_size, seed, names, start
        self.recipe = recipe or TrainingRecipe()
        self.mean = torch.tensor(MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(STD).view(1, 3, 1, 1)

    def __iter__(self):
        tokenizer = open_clip.get_tokenizer("RN50", context_length=MODEL_CFG["text_cfg"]["context_length"])
        step = self.start
        while True:
            images, captions, values, masks, marked = [], [], [], [], []
            for example in draw_training_batch(self.seed, step, self.batch_size, self.names, self.recipe):
                mask = [-1] * len(ATTRIBUTES)  # all bits set: no constraint
                for col, bits in example.preds:
                    mask[col] &= bits
                images.append(np.asarray(example.image))
                captions.append(example.caption)
                values.append(example.vector)
                masks.append(mask)
                marked.append(example.marked)
            pixels = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255)
            pixels = (pixels - self.mean) / self.std
            yield pixels, tokenizer(captions), torch.tensor(values), torch.tensor(masks), captions, torch.tensor(marked)
            step += 1


def positives(values: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """[image, caption] bool: does image i's object satisfy every predicate of caption j?"""
    bits = (masks[None, :, :] >> values[:, None, :]) & 1
    return bits.all(-1)


def multi_positive_loss(image_emb, text_emb, logit_scale, pos: torch.Tensor) -> torch.Tensor:
    """Contrastive loss whose targets spread uniformly over all positives of each row / column."""
    logits = logit_scale * image_emb @ text_emb.T
    target = pos.float()
    i2t = -(target / target.sum(1, keepdim=True) * F.log_softmax(logits, 1)).sum(1).mean()
    t2i = -(target / target.sum(0, keepdim=True) * F.log_softmax(logits, 0)).sum(0).mean()
    return (i2t + t2i) / 2


def write_bundle(model: torch.nn.Module, out: Path, size: str = DEFAULT_SIZE) -> str:
    """Write ``open_clip_config.json``, fp16 ``open_clip_model.safetensors`` and ``<model name>.json``; returns
    sha256."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    name, cfg = model_name(size), MODEL_SIZES[size]
    (out / "open_clip_config.json").write_text(
        json.dumps({"name": name, "model_cfg": cfg, "preprocess_cfg": PREPROCESS_CFG}, indent=2) + "\n"
    )
    (out / f"{name}.json").write_text(json.dumps(cfg, indent=2) + "\n")
    state = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    weights = out / "open_clip_model.safetensors"
    save_file(state, str(weights))
    return hashlib.sha256(weights.read_bytes()).hexdigest()


def train(
    steps: int,
    out: Path,
    seed: int = 0,
    batch_size: int = 256,
    lr: float = 1.5e-3,
    workers: int = 1,
    *,
    size: str = DEFAULT_SIZE,
    recipe: TrainingRecipe | None = None,
    threads: int = 2,
) -> dict:
    """Train from scratch and write the bundle to ``out``; returns training facts for the model card.

    ``training.json`` is written last: a bundle folder without it is an unfinished run. ``threads`` (torch's
    intra-op threads) and ``workers`` (data processes) change the speed, never the result: on cores that other
    processes share, 1 thread and no worker avoids the spin-waits of two threads that cannot both run.
    """
    recipe = recipe or TrainingRecipe()
    if size not in MODEL_SIZES:
        raise ValueError(f"size must be one of {', '.join(MODEL_SIZES)}, got {size!r}")
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = _build(seed, size)
    n_params = sum(p.numel() for p in model.parameters())
    names = pseudo_names(seed=seed)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    warmup = max(1, steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        return 0.5 * lr * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    loader = torch.utils.data.DataLoader(
        CaptionBatches(batch_size, seed, names, recipe=recipe),
        batch_size=None,
        num_workers=workers,
        persistent_workers=workers > 0,
        prefetch_factor=2 if workers > 0 else None,
    )
    model.train()
    start, smooth, history, marked_seen = time.time(), None, [], 0
    for step, (pixels, tokens, values, masks, _captions, marked) in enumerate(loader):
        if step >= steps:
            break
        marked_seen += int(marked.sum())
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        image_emb = F.normalize(model.encode_image(pixels), dim=-1)
        text_emb = F.normalize(model.encode_text(tokens), dim=-1)
        loss = multi_positive_loss(image_emb, text_emb, model.logit_scale.exp(), positives(values, masks))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        smooth = loss.item() if smooth is None else 0.98 * smooth + 0.02 * loss.item()
        if step % 50 == 0 or step == steps - 1:
            elapsed = time.time() - start
            history.append((step, round(smooth, 4)))
            log.info(
                "step %d/%d loss %.4f (smoothed %.4f) scale %.1f %.1f img/s %.0fs",
                step,
                steps,
                loss.item(),
                smooth,
                model.logit_scale.exp().item(),
                (step + 1) * batch_size / elapsed,
                elapsed,
            )
    model.eval()
    sha = write_bundle(model, out, size)
    facts = {
        "seed": seed,
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "params": n_params,
        "train_seconds": round(time.time() - start),
        "final_loss_smoothed": round(smooth or float("nan"), 4),
        "sha256": sha,
        "threads": threads,
        "workers": workers,
        "size": size,
        "model_name": model_name(size),
        "samples_seen": steps * batch_size,
        "marked_samples_seen": marked_seen,
        "recipe": recipe.facts(),
        "loss_history": history,
    }
    write_atomic(out / "training.json", json.dumps(facts, indent=2) + "\n")
    return facts


def _build(seed: int, size: str = DEFAULT_SIZE) -> torch.nn.Module:
    torch.manual_seed(seed)
    open_clip.add_model_config(_write_temp_config(size))
    return open_clip.create_model(model_name(size), pretrained=None)


def _write_temp_config(size: str = DEFAULT_SIZE) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / f"{model_name(size)}.json"
    path.write_text(json.dumps(MODEL_SIZES[size]))
    return path


def parse_colour(text: str) -> tuple[int, int, int]:
    """A marking colour: a name of ``MARK_COLOURS`` or ``R,G,B`` (0-255 each)."""
    if text in MARK_COLOURS:
        return MARK_COLOURS[text]
    parts = text.split(",")
    if len(parts) == 3 and all(p.strip().isdigit() and 0 <= int(p) <= 255 for p in parts):
        return (int(parts[0]), int(parts[1]), int(parts[2]))
    raise ValueError(f"a colour is one of {', '.join(MARK_COLOURS)} or R,G,B with 0-255 each, got {text!r}")


def parse_widths(text: str) -> tuple[int, int]:
    """A marking width in px at the 64 px canvas: ``2`` or an inclusive range ``1-2``."""
    lo, _, hi = text.partition("-")
    try:
        widths = (int(lo), int(hi or lo))
    except ValueError:
        widths = (0, 0)
    if not 1 <= widths[0] <= widths[1]:
        raise ValueError(f"a width is a whole number of px >= 1 or a range like 1-2, got {text!r}")
    return widths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1800)
    parser.add_argument("--out", type=Path, default=BUNDLE_DIR)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1.5e-3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the speed only)")
    parser.add_argument("--size", choices=list(MODEL_SIZES), default=DEFAULT_SIZE, help="capacity of both towers")
    parser.add_argument(
        "--marking-share",
        type=float,
        default=None,
        help="exact share of marked samples per batch, 0-1 (default: the shipped recipe, 25 %% drawn per sample)",
    )
    parser.add_argument("--mark-colour", default="red", help=f"{', '.join(MARK_COLOURS)} or R,G,B")
    parser.add_argument("--mark-width", default="1-2", help="px at the 64 px canvas: 2, or a range 1-2")
    parser.add_argument("--filler", choices=FILLERS, default="single", help="the unmarked samples of an exact share")
    args = parser.parse_args(argv)
    try:
        style = MarkingStyle(colour=parse_colour(args.mark_colour), widths=parse_widths(args.mark_width))
        recipe = TrainingRecipe(marking_share=args.marking_share, marking=style, filler=args.filler)
    except ValueError as err:
        parser.error(str(err))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    facts = train(
        args.steps,
        args.out,
        seed=args.seed,
        batch_size=args.batch_size,
        lr=args.lr,
        workers=args.workers,
        size=args.size,
        recipe=recipe,
        threads=args.threads,
    )
    log.info("wrote %s (sha256 %s) in %ss", args.out, facts["sha256"], facts["train_seconds"])
    write_model_card(args.out, facts)


if __name__ == "__main__":
    main()
