"""The bad-input matrix (issue 14): every bad input ends in one clear line, nothing is half-written.

Each case of :data:`CASES` builds its inputs under ``tmp_path`` and runs the evaluation as the command
line does after Hydra composed the config (:func:`descbench.eval.run_reporting`, in-process), or as a
real ``python -m descbench.eval`` where the behaviour lives in the command line (Hydra's composition,
an LLM server that hangs, a file-size limit). Every case asserts the exit code, exactly one stderr line
starting with ``error: `` that holds a distinctive text naming the file/key/value, no traceback, no
``results.json`` and no half-written cache file or temporary file left behind. The cache cases must
succeed and equal a cold run. Multirun, same-second jobs and kill -9 during a write follow the matrix.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch  # noqa: F401  (its log handler binds the session's stderr, not a test's capsys)
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from descbench.core.feature_cache import tensors_sha256
from descbench.eval import ERROR_FILE, RunContext, run_reporting
from tests.conftest import ROOT, compose_config, run_eval
from tests.openai_server import OpenAIStubServer, Reply, canned
from tests.test_rec_data import write_images, write_refer

PHOTOS = ["experiment=photos", "dataset.builder.views=2"]
SHAPES = ["dataset.limit=24"]
WORLD_MODEL = ROOT / "descbench" / "world" / "model"
#: bytes that must never reach a message (a non-UTF-8 file's content)
SECRET_BYTES = "Ünïcödé-PAYLOAD-7f3a"
REC_IMAGE = "COCO_train2014_000000000001.jpg"
PNG_HEAD = b"\x89PNG\r\n\x1a\n"
BAD_PROPOSALS = json.dumps({"1": [[0, 0, "5", 5]]})

# --------------------------------------------------------------------------- inputs


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def photo_classes() -> list[str]:
    from descbench.datasets.photos import photo_table

    return list(photo_table()["classify"].values())


def descriptors(overrides: dict | None = None, drop: str | None = None) -> dict[str, list[str]]:
    data = {c: [f"{c} part {i}" for i in range(3)] for c in photo_classes() if c != drop}
    return {**data, **(overrides or {})}


def describe_file(tmp: Path, content: str | bytes | dict, *extra: str) -> list[str]:
    """``describe=file`` on the photos with ``content`` as the descriptor file."""
    text = json.dumps(content) if isinstance(content, (dict, list)) else content
    path = write(tmp / "descriptors.json", text)
    return [*PHOTOS, "describe=file", f"describe.path={path}", *extra]


def image_folder(tmp: Path, names: str | bytes | None = "auto", colours: dict | None = None, *extra: str) -> list[str]:
    """``dataset=imagefolder`` over ``tmp/val/<class>/*.png``; ``names``: the class-name file's text."""
    colours = colours or {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 200, 30)}
    for name, colour in colours.items():
        (tmp / "val" / name).mkdir(parents=True, exist_ok=True)
        for j in range(2):
            Image.new("RGB", (32, 32), colour).save(tmp / "val" / name / f"{j}.png")
    args = ["dataset=imagefolder", f"dataset.builder.root={tmp / 'val'}", "backbone=tiny", "describe=classname"]
    if names == "auto":
        names = "".join(f"{n}\t{n} thing\n" for n in colours)
    if names is not None:
        args.append(f"dataset.builder.class_names={write(tmp / 'names.tsv', names)}")
    return [*args, *extra]


def rec_line(**changes) -> dict:
    item = {
        "file_name": "COCO_train2014_000000000001.jpg",
        "image_id": 1,
        "anns": [{"bbox": [2, 4, 20, 30], "id": 10}, {"bbox": [30, 4, 25, 40], "id": 11}],
        "ann_id": 10,
        "sentences": [{"raw": "the left one"}],
        "split": "val",
    }
    item.update(changes)
    return {k: v for k, v in item.items() if v is not None}


def rec_jsonl(tmp: Path, lines: list[dict | str] | bytes, *extra: str, split: str = "val") -> list[str]:
    """``task=rec dataset=rec_jsonl`` over ``lines`` (dicts as JSON, strings written as they are)."""
    images = write_images(tmp / "images")
    if isinstance(lines, bytes):
        path = write(tmp / "refs.jsonl", lines)
    else:
        text = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
        path = write(tmp / "refs.jsonl", text)
    return [
        "task=rec",
        "dataset=rec_jsonl",
        f"dataset.builder.path={path}",
        f"dataset.builder.image_root={images}",
        f"dataset.builder.split={split}",
        "backbone=tiny",
        "task.num_workers=0",
        *extra,
    ]


def rec_refer(tmp: Path, *extra: str, refs: list | None = None, annotations: list | None = None) -> list[str]:
    root = write_refer(tmp / "refcoco", refs=refs, annotations=annotations)
    images = write_images(tmp / "train2014")
    return [
        "task=rec",
        "dataset=rec_refer",
        f"dataset.builder.root={root}",
        f"dataset.builder.image_dir={images}",
        "backbone=tiny",
        "task.num_workers=0",
        *extra,
    ]


def tiny_state(seed: int = 3) -> dict[str, torch.Tensor]:
    from descbench.core.backbone import build_backbone

    return build_backbone("descbench-tiny", random_init=True, seed=seed).model.state_dict()


def checkpoint(tmp: Path, data: bytes | dict | None) -> list[str]:
    path = tmp / "weights.pt"
    if isinstance(data, dict):
        torch.save(data, path)
    elif data is not None:
        write(path, data)
    return [*PHOTOS, "backbone=checkpoint", "backbone.model=descbench-tiny", f"backbone.pretrained={path}"]


def bundle(tmp: Path, weights: dict[str, str], config: str | None = "copy", *extra: str) -> list[str]:
    """A ``local-dir:`` bundle: the world model's config (``config``) and ``weights`` {file name: how}."""
    from safetensors.torch import load_file

    folder = tmp / "bundle"
    folder.mkdir(parents=True)
    if config == "copy":
        shutil.copy(WORLD_MODEL / "open_clip_config.json", folder)
    elif config is not None:
        write(folder / "open_clip_config.json", config)
    state = load_file(str(WORLD_MODEL / "open_clip_model.safetensors"))
    for name, how in weights.items():
        if how == "copy":
            shutil.copy(WORLD_MODEL / "open_clip_model.safetensors", folder / name)
        elif how == "torch":
            torch.save(state, folder / name)
        elif how == "tiny":  # the weights of another architecture
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in tiny_state().items()}, str(folder / name))
        else:
            write(folder / name, how.encode())
    return [*SHAPES, f"backbone.model=local-dir:{folder}", *extra]


def after(overrides: list[str], *effects: object) -> list[str]:
    """``overrides``, once ``effects`` (evaluated after them, left to right) changed the inputs they made."""
    return overrides


def not_a_dir(tmp: Path) -> Path:
    """A path below a regular file: nothing can be created there (also as root)."""
    return write(tmp / "plain-file", "x") / "sub"


# --------------------------------------------------------------------------- the matrix


@dataclass(frozen=True)
class Bad:
    """One bad input: how to build it (returns the overrides) and the distinctive text of its error line.

    ``expect`` may hold ``{tmp}`` (the case's tmp_path). ``forbid``: texts that must not be printed at all.
    ``server``: an OpenAI-compatible stub answering with ``server`` (its URL is appended to the overrides).
    """

    id: str
    make: Callable[[Path], list[str]]
    expect: str
    forbid: tuple[str, ...] = ()
    server: Callable[..., Reply] | None = None
    run_dir: Callable[[Path], Path] | None = None
    multirun: bool = False


def llm_args(base_url: str, *extra: str) -> list[str]:
    return [
        *PHOTOS,
        "describe=llm",
        "describe/backend=openai",
        f"describe.backend.base_url={base_url}",
        "describe.backend.api=chat",
        "describe.backend.max_retries=0",
        "describe.backend.timeout=5",
        "describe.progress=false",
        *extra,
    ]


def llm_case(*extra: str) -> Callable[[Path], list[str]]:
    return lambda tmp: list(extra)  # the server URL and the llm options are added by the runner


def pickle_with_global() -> bytes:
    return b"cos\nsystem\n(S'echo pwned'\ntR."


def rec_photos(*extra: str) -> Callable[[Path], list[str]]:
    return lambda t: ["experiment=rec_photos", "dataset.builder.num_canvases=2", "task.num_workers=0", *extra]


def photos(*extra: str) -> Callable[[Path], list[str]]:
    return lambda t: [*PHOTOS, *extra]


CONFIGS = [
    Bad("config/plus-describe-option", photos("+describe.nmu_desc=3"), "describe has no option nmu_desc"),
    Bad("config/plus-dataset-option", photos("+dataset.builder.view=3"), "dataset.builder has no option view"),
    Bad("config/plus-backbone-option", photos("+backbone.weights=x"), "backbone has no option weights"),
    Bad("config/plus-trainer-option", photos("+trainer.device=2"), "trainer has no option device"),
    Bad("config/template-field", photos("describe.template='{nope}, {descriptor}'"), "uses {nope}: its fields are"),
    Bad("config/template-no-descriptor", photos("describe.template=x"), "describe.template='x' has no {descriptor}"),
    Bad(
        "config/classname-template",
        photos("describe=classname", "describe.template='a photo'"),
        "describe.template='a photo' has no {classname}",
    ),
    Bad("config/batch-size", photos("task.batch_size=0"), "task.batch_size=0 must be an integer >= 1"),
    Bad("config/num-workers", photos("task.num_workers=-1"), "task.num_workers=-1 must be an integer >= 0"),
    Bad("config/accelerator", photos("trainer.accelerator=tpu"), "trainer.accelerator=tpu but this machine has no"),
    Bad("config/devices", photos("trainer.devices=abc"), "trainer.devices='abc' is not a device count"),
    Bad("config/strategy", photos("trainer.strategy=dpp"), "trainer.strategy='dpp' is not a strategy"),
    Bad("config/precision", photos("trainer.precision=8-true"), "trainer.precision='8-true' is not a precision"),
    Bad(
        "config/devices-in-a-multirun",
        photos("trainer.devices=2"),
        "trainer.devices=2 (num_nodes=1) cannot run inside a Hydra multirun",
        multirun=True,
    ),
    Bad(
        "config/backend-timeout",
        photos("describe=llm", "describe/backend=openai", "describe.backend.timeout=-1"),
        "describe.backend.timeout must be a number > 0, got -1",
    ),
    Bad("config/rec-negatives", rec_photos("task.negatives=-1"), "task.negatives=-1 must be an integer >= 1"),
    Bad("config/rec-extra-backbone", rec_photos("task.extra_backbones=[1]"), "task.extra_backbones[0]=1 is not"),
    Bad("config/rec-template", rec_photos("task.template=nothing"), "task.template='nothing' has no {expression}"),
    Bad("config/num_desc-0", lambda t: [*PHOTOS, "num_desc=0"], "num_desc must be an integer >= 1, got 0"),
    Bad("config/num_desc-100", lambda t: [*PHOTOS, "num_desc=100"], "num_desc=100 but describe=world has fewer"),
    Bad("config/entropy_scale", lambda t: [*PHOTOS, "task.entropy_scale=abc"], "task.entropy_scale='abc' is not"),
    Bad("config/entropy_scale-negative", lambda t: [*PHOTOS, "task.entropy_scale=-2"], "task.entropy_scale=-2"),
    Bad(
        "config/describe-file-no-path",
        lambda t: [*PHOTOS, "describe=file"],
        "describe.path is required by the chosen config: the descriptor JSON file",
    ),
    Bad(
        "config/checkpoint-no-pretrained",
        lambda t: [*PHOTOS, "backbone=checkpoint", "backbone.model=descbench-tiny"],
        "backbone.pretrained is required",
    ),
    Bad("config/unknown-model", lambda t: [*PHOTOS, "backbone.model=ViT-Z-99"], "unknown backbone model 'ViT-Z-99'"),
    Bad(
        "config/unknown-tag",
        lambda t: [*PHOTOS, "backbone=vit_b32", "backbone.pretrained=nope"],
        "unknown pretrained tag 'nope' for ViT-B-32",
    ),
    Bad("config/limit-0", lambda t: [*PHOTOS, "dataset.limit=0"], "dataset.limit=0 must be an integer >= 1"),
    Bad(
        "config/visual-prompt-option",
        lambda t: ["experiment=rec_photos", "+visual_prompt.circle.radius=3"],
        "visual prompt 'circle' has no option radius: its options are colour, thickness",
    ),
    Bad(
        "config/negatives",
        lambda t: [
            "experiment=rec_photos",
            "dataset.builder.num_canvases=2",
            "task.subtract=true",
            "task.negatives=99",
        ],
        "task.negatives=99",
    ),
    Bad(
        "config/imagenet-root",
        lambda t: ["dataset=imagenet", f"dataset.builder.root={t / 'nowhere'}", "backbone=tiny"],
        "folder not found: {tmp}/nowhere/val",
    ),
    Bad(
        "config/cub-root", lambda t: ["dataset=cub", f"dataset.builder.root={t}", "backbone=tiny"], "dataset cub: {tmp}"
    ),
    Bad(
        "config/torchvision-root",
        lambda t: ["dataset=food101", f"dataset.builder.root={t / 'none'}", "backbone=tiny"],
        "{tmp}/none",
    ),
    Bad(
        "config/llm-offline",
        lambda t: [*PHOTOS, "describe=llm", "describe/backend=openai", "describe.offline=true"],
        "offline: 12 class(es) have no cached descriptions",
    ),
    Bad(
        "config/llm-num_desc",
        lambda t: [*PHOTOS, "describe=llm", "describe/backend=openai", "num_desc=50"],
        "describe=llm: ",
    ),
    Bad(
        "config/llm-bank",
        lambda t: [*PHOTOS, "describe=llm", "describe/backend=openai", f"describe.bank={t / 'bank.yaml'}"],
        "{tmp}/bank.yaml",
    ),
    Bad(
        "config/llm-concurrency",
        lambda t: [*PHOTOS, "describe=llm", "describe/backend=openai", "describe.concurrency=0"],
        "concurrency must be an integer >= 1",
    ),
]

DESCRIPTION_FILES = [
    Bad(
        "descriptions/missing",
        lambda t: [*PHOTOS, "describe=file", f"describe.path={t / 'none.json'}"],
        "description file not found: {tmp}/none.json",
    ),
    Bad("descriptions/a-folder", lambda t: [*PHOTOS, "describe=file", f"describe.path={t}"], "{tmp}"),
    Bad("descriptions/invalid-json", lambda t: describe_file(t, '{"cat": ["x",]}'), "is not valid JSON"),
    Bad(
        "descriptions/not-utf8",
        lambda t: describe_file(t, ('{"cat": ["' + SECRET_BYTES + '"]}').encode("latin-1")),
        "is not UTF-8 text",
        forbid=(SECRET_BYTES, "PAYLOAD", "\\x"),
    ),
    Bad("descriptions/a-list", lambda t: describe_file(t, [["cat", "x"]]), "must hold a JSON object"),
    Bad(
        "descriptions/entry-not-a-list",
        lambda t: describe_file(t, descriptors({"cat": "whiskers"})),
        "the entry 'cat' is a str, not a list of strings",
    ),
    Bad(
        "descriptions/entry-with-a-number",
        lambda t: describe_file(t, descriptors({"moon": ["round", 7]})),
        "the entry 'moon'",
    ),
    Bad(
        "descriptions/missing-class",
        lambda t: describe_file(t, descriptors(drop="rocket")),
        "no key for 1 class(es) of the dataset: ['rocket']",
    ),
    Bad("descriptions/empty-object", lambda t: describe_file(t, {}), "no key for 12 class(es)"),
    Bad(
        "descriptions/nested-without-key",
        lambda t: describe_file(t, {"photos": descriptors()}),
        "nests its classes under top-level keys ['photos']: set describe.key",
    ),
    Bad(
        "descriptions/wrong-key",
        lambda t: describe_file(t, {"photos": descriptors()}, "describe.key=imagenet"),
        "has no top-level key 'imagenet'",
    ),
    Bad(
        "descriptions/class-matches-two-keys",
        lambda t: describe_file(t, descriptors({"Coffee Cup": ["a"], "coffee_cup": ["b"]}, drop="coffee cup")),
        "'coffee cup' matches keys",
    ),
    Bad(
        "descriptions/key-matches-two-classes",
        lambda t: [
            *image_folder(t, "red\tSea Lion\nblue\tsea-lion\ngreen\tgrass\n"),
            "describe=file",
            f"describe.path={write(t / 'd.json', json.dumps({'sea lion': ['x'], 'grass': ['y']}))}",
        ],
        "key 'sea lion' matches classes ['",
    ),
    Bad(
        "descriptions/empty-list-error",
        lambda t: describe_file(t, descriptors({"horse": []}), "describe.empty=error"),
        "1 class(es) have no descriptor: ['horse']",
    ),
    Bad(
        "descriptions/truncate-fewer",
        lambda t: describe_file(t, descriptors(), "describe.truncate=true", "num_desc=5"),
        "num_desc=5",
    ),
]

IMAGE_FOLDERS = [
    Bad(
        "folder/name-without-folder",
        lambda t: image_folder(t, "red\tr\nblue\tb\ngreen\tg\ncyan\tc\n"),
        "lists 1 class(es) with no image folder under {tmp}/val: ['cyan']",
    ),
    Bad(
        "folder/folder-without-name",
        lambda t: image_folder(t, "red\tr\nblue\tb\n"),
        "has no name for folders ['green']",
    ),
    Bad(
        "folder/names-folder-twice",
        lambda t: image_folder(t, "red\ta\nblue\tb\nred\tc\ngreen\td\n"),
        "names.tsv:3: folder 'red' is named again (line 1 named it 'a')",
    ),
    Bad(
        "folder/one-class",
        lambda t: image_folder(t, "auto", {"red": (200, 0, 0)}),
        "dataset imagefolder has 1 class(es) ['red thing']: classifying needs at least 2",
    ),
    Bad(
        "folder/names-file-missing",
        lambda t: [*image_folder(t, None), f"dataset.builder.class_names={t / 'none.tsv'}"],
        "class-name file not found: {tmp}/none.tsv",
    ),
    Bad("folder/names-bad-line", lambda t: image_folder(t, "red\tr\nblue\n"), "names.tsv:2: expected 'folder<TAB>"),
    Bad(
        "folder/names-not-utf8",
        lambda t: image_folder(t, f"red\t{SECRET_BYTES}\nblue\tb\ngreen\tg\n".encode("latin-1")),
        "class-name file {tmp}/names.tsv is not UTF-8 text",
        forbid=(SECRET_BYTES, "PAYLOAD"),
    ),
    Bad(
        "folder/corrupt-image-in-a-worker",
        lambda t: after(
            image_folder(t, "auto", None, "task.num_workers=1"), write(t / "val/blue/broken.png", PNG_HEAD + b"junk")
        ),
        "{tmp}/val/blue/broken.png",
    ),
    Bad(
        "folder/truncated-jpeg",
        lambda t: after(image_folder(t, "auto", None, "task.num_workers=0"), truncated_jpeg(t / "val/red/cut.jpg")),
        "{tmp}/val/red/cut.jpg",
    ),
    Bad(
        "folder/empty-class-folder",
        lambda t: after(image_folder(t, None), (t / "val" / "violet").mkdir()),
        "violet",
    ),
    Bad(
        "folder/no-class-folders",
        lambda t: ["dataset=imagefolder", f"dataset.builder.root={(t / 'e').mkdir() or t / 'e'}", "backbone=tiny"],
        "{tmp}/e",
    ),
    Bad(
        "folder/root-missing",
        lambda t: ["dataset=imagefolder", f"dataset.builder.root={t / 'absent'}", "backbone=tiny"],
        "folder not found: {tmp}/absent",
    ),
    Bad(
        "folder/descriptors-missing",
        lambda t: [*image_folder(t), f"dataset.builder.descriptors={t / 'd.json'}", "describe=world"],
        "descriptor file not found: {tmp}/d.json",
    ),
    Bad(
        "folder/descriptors-invalid-json",
        lambda t: [*image_folder(t), f"dataset.builder.descriptors={write(t / 'd.json', '{')}", "describe=world"],
        "descriptor file {tmp}/d.json is not valid JSON",
    ),
    Bad(
        "folder/descriptors-wrong-shape",
        lambda t: [*image_folder(t), f"dataset.builder.descriptors={write(t / 'd.json', '[1]')}", "describe=world"],
        "{tmp}/d.json",
    ),
]


def cub(tmp: Path, **files: str | bytes) -> list[str]:
    """``dataset=cub`` over a two-image CUB_200_2011 layout; ``files`` replace its index files."""
    root = tmp / "CUB_200_2011"
    for name, folder in (("1.jpg", "001.Black_footed_Albatross"), ("2.jpg", "002.Laysan_Albatross")):
        (root / "images" / folder).mkdir(parents=True)
        Image.new("RGB", (16, 16), (90, 90, 90)).save(root / "images" / folder / name)
    index = {
        "images.txt": "1 001.Black_footed_Albatross/1.jpg\n2 002.Laysan_Albatross/2.jpg\n",
        "classes.txt": "1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n",
        "image_class_labels.txt": "1 1\n2 2\n",
        "train_test_split.txt": "1 0\n2 0\n",
    }
    for name, text in {**index, **{k.replace("_txt", ".txt"): v for k, v in files.items()}}.items():
        write(root / name, text)
    return ["dataset=cub", f"dataset.builder.root={root}", "backbone=tiny", "describe=classname"]


def truncated_jpeg(path: Path) -> Path:
    """A JPEG cut in half (Pillow raises on load)."""
    import io

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return write(path, buffer.getvalue()[: len(buffer.getvalue()) // 2])


CUB = [
    Bad(
        "cub/no-test-image",
        lambda t: cub(t, train_test_split_txt="1 1\n2 1\n"),
        "CUB_200_2011/train_test_split.txt puts no image in the test split",
    ),
    Bad(
        "cub/bad-index-line",
        lambda t: cub(t, images_txt="1\n"),
        "CUB_200_2011/images.txt:1: expected '<number> <value>'",
    ),
    Bad(
        "cub/split-line-missing",
        lambda t: cub(t, train_test_split_txt="1 0\n"),
        "CUB_200_2011/train_test_split.txt has no line for 1 image(s) of images.txt (first ids: ['2'])",
    ),
    Bad(
        "cub/label-beyond-classes",
        lambda t: cub(t, image_class_labels_txt="1 1\n2 7\n"),
        "uses class numbers [7] beyond the 2 classes",
    ),
    Bad(
        "cub/classes-not-utf8",
        lambda t: cub(t, classes_txt=f"1 {SECRET_BYTES}\n2 b\n".encode("latin-1")),
        "CUB_200_2011/classes.txt is not UTF-8 text",
        forbid=(SECRET_BYTES, "PAYLOAD"),
    ),
]

REC_FILES = [
    Bad(
        "rec/missing-file",
        lambda t: [*rec_jsonl(t, [rec_line()]), f"dataset.builder.path={t / 'none.jsonl'}"],
        "JSON-lines file not found: {tmp}/none.jsonl",
    ),
    Bad(
        "rec/bad-json-line",
        lambda t: rec_jsonl(t, [rec_line(), '{"file_name": "x.jpg",']),
        "{tmp}/refs.jsonl:2 is not valid JSON",
    ),
    Bad("rec/not-an-object", lambda t: rec_jsonl(t, ["[1, 2]"]), "{tmp}/refs.jsonl:1 is not a JSON object"),
    Bad("rec/missing-key", lambda t: rec_jsonl(t, [rec_line(anns=None)]), "refs.jsonl:1 has no 'anns'"),
    Bad(
        "rec/ann-without-bbox",
        lambda t: rec_jsonl(t, [rec_line(anns=[{"id": 10}])]),
        "refs.jsonl:1: 'anns' must be a list of objects with 'bbox'",
    ),
    Bad(
        "rec/bbox-a-string",
        lambda t: rec_jsonl(t, [rec_line(anns=[{"bbox": "7030", "id": 10}])]),
        "box '7030' is not [x, y, w, h]",
    ),
    Bad(
        "rec/bbox-nan",
        lambda t: rec_jsonl(
            t,
            [
                '{"file_name": "COCO_train2014_000000000001.jpg", "image_id": 1, "anns": '
                '[{"bbox": [NaN, 0, 5, 5], "id": 10}], "ann_id": 10, "sentences": [{"raw": "x"}]}'
            ],
        ),
        "box [nan, 0, 5, 5] is not [x, y, w, h]",
    ),
    Bad(
        "rec/bbox-three-numbers",
        lambda t: rec_jsonl(t, [rec_line(anns=[{"bbox": [1, 2, 3], "id": 10}])]),
        "box [1, 2, 3] is not",
    ),
    Bad(
        "rec/image-id-file-name-clash",
        lambda t: rec_jsonl(t, [rec_line(), rec_line(file_name="COCO_train2014_000000000002.jpg", ann_id=11)]),
        "refs.jsonl:2: image_id 1 has file_name 'COCO_train2014_000000000002.jpg', but line 1",
    ),
    Bad("rec/ann-id-not-in-anns", lambda t: rec_jsonl(t, [rec_line(ann_id=99)]), "ann_id 99 names no ann in 'anns'"),
    Bad(
        "rec/absent-split",
        lambda t: rec_jsonl(t, [rec_line()], split="testB"),
        "split 'testB' is not in {tmp}/refs.jsonl: it holds the splits val",
    ),
    Bad(
        "rec/sentences-not-a-list",
        lambda t: rec_jsonl(t, [rec_line(sentences="the left one")]),
        "refs.jsonl:1: 'sentences' must be a list",
    ),
    Bad(
        "rec/sentence-without-text",
        lambda t: rec_jsonl(t, [rec_line(sentences=[{"tokens": ["x"]}])]),
        "refs.jsonl:1: a sentence must be an object with a 'raw'",
    ),
    Bad(
        "rec/no-sentence-at-all",
        lambda t: rec_jsonl(t, [rec_line(sentences=[]), rec_line(ann_id=11, sentences=[])]),
        "{tmp}/refs.jsonl gives no referring expression to evaluate",
    ),
    Bad("rec/empty-file", lambda t: rec_jsonl(t, b""), "{tmp}/refs.jsonl gives no referring expression to evaluate"),
    Bad("rec/empty-expression", lambda t: rec_jsonl(t, [rec_line(sentences=[{"raw": "  "}])]), "empty expression"),
    Bad(
        "rec/gold-outside-image",
        lambda t: rec_jsonl(
            t, [rec_line(anns=[{"bbox": [500, 500, 5, 5], "id": 10}, {"bbox": [1, 1, 5, 5], "id": 11}])]
        ),
        "has gold box [500.0, 500.0, 5.0, 5.0] with no area inside its 64x48 image",
    ),
    Bad(
        "rec/image-missing",
        lambda t: rec_jsonl(t, [rec_line(file_name="absent.jpg")]),
        "image file not found: {tmp}/images/absent.jpg",
    ),
    Bad(
        "rec/size-not-a-number",
        lambda t: rec_jsonl(t, [rec_line(width="wide", height=48)]),
        "refs.jsonl:1: width 'wide' and height 48 must both be positive integers",
    ),
    Bad(
        "rec/jsonl-not-utf8",
        lambda t: rec_jsonl(
            t, json.dumps(rec_line(sentences=[{"raw": SECRET_BYTES}]), ensure_ascii=False).encode("latin-1")
        ),
        "JSON-lines file {tmp}/refs.jsonl is not UTF-8 text",
        forbid=(SECRET_BYTES, "PAYLOAD"),
    ),
    Bad(
        "rec/undecodable-image",
        lambda t: after(rec_jsonl(t, [rec_line()]), write(t / "images" / REC_IMAGE, b"not a jpeg at all")),
        "cannot read image {tmp}/images/COCO_train2014_000000000001.jpg",
    ),
    Bad(
        "rec/undecodable-image-in-a-worker",
        lambda t: after(
            rec_jsonl(t, [rec_line(width=64, height=48)], "task.num_workers=1"),
            write(t / "images" / REC_IMAGE, b"not a jpeg at all"),
        ),
        "cannot read image {tmp}/images/COCO_train2014_000000000001.jpg",
    ),
    Bad(
        "rec/proposals-missing",
        lambda t: rec_jsonl(t, [rec_line()], f"dataset.builder.proposals={t / 'dets.json'}"),
        "proposals file not found: {tmp}/dets.json",
    ),
    Bad(
        "rec/proposals-not-json",
        lambda t: rec_jsonl(t, [rec_line()], f"dataset.builder.proposals={write(t / 'dets.json', 'boxes: 1')}"),
        "proposals file {tmp}/dets.json is not valid JSON",
    ),
    Bad(
        "rec/proposals-bad-box",
        lambda t: rec_jsonl(t, [rec_line()], f"dataset.builder.proposals={write(t / 'd.json', BAD_PROPOSALS)}"),
        "proposals file {tmp}/d.json, image 1: box [0, 0, '5', 5]",
    ),
    Bad(
        "refer/refs-missing",
        lambda t: rec_refer(t, "dataset.builder.split_by=google"),
        "refs file not found: {tmp}/refcoco/refs(google).p",
    ),
    Bad(
        "refer/pickle-with-a-global",
        lambda t: after(rec_refer(t), write(t / "refcoco" / "refs(unc).p", pickle_with_global())),
        "refusing to load {tmp}/refcoco/refs(unc).p: the pickle wants to build",
    ),
    Bad(
        "refer/pickle-truncated",
        lambda t: after(rec_refer(t), cut_file(t / "refcoco" / "refs(unc).p")),
        "cannot read the pickle {tmp}/refcoco/refs(unc).p",
    ),
    Bad(
        "refer/no-refs",
        lambda t: after(rec_refer(t), write(t / "refcoco" / "refs(unc).p", pickle.dumps([], protocol=2))),
        "{tmp}/refcoco/refs(unc).p holds no record",
    ),
    Bad(
        "refer/refs-not-a-list",
        lambda t: after(rec_refer(t), write(t / "refcoco" / "refs(unc).p", pickle.dumps({"a": 1}, protocol=2))),
        "is not a REFER refs file",
    ),
    Bad(
        "refer/instances-missing",
        lambda t: after(rec_refer(t), (t / "refcoco" / "instances.json").unlink()),
        "instances file not found: {tmp}/refcoco/instances.json",
    ),
    Bad(
        "refer/instances-not-json",
        lambda t: after(rec_refer(t), write(t / "refcoco" / "instances.json", "{")),
        "{tmp}/refcoco/instances.json is not valid JSON",
    ),
    Bad(
        "refer/annotation-without-bbox",
        lambda t: rec_refer(t, annotations=[{"id": 10, "image_id": 1}]),
        "instances.json: an annotation lacks 'bbox'",
    ),
    Bad(
        "refer/absent-split",
        lambda t: rec_refer(t, "dataset.builder.split=testB"),
        "split 'testB' is not in {tmp}/refcoco/refs(unc).p",
    ),
    Bad(
        "refer/ann-id-absent",
        lambda t: rec_refer(
            t, refs=[{"ref_id": 0, "ann_id": 77, "image_id": 1, "split": "val", "sentences": [{"raw": "x"}]}]
        ),
        "ref 0 names annotation 77, absent from {tmp}/refcoco/instances.json",
    ),
]


def cut_file(path: Path) -> Path:
    data = path.read_bytes()
    return write(path, data[: len(data) // 2])


CHECKPOINTS = [
    Bad("checkpoint/missing", lambda t: checkpoint(t, None), "checkpoint file not found: {tmp}/weights.pt"),
    Bad(
        "checkpoint/garbage",
        lambda t: checkpoint(t, b"\x00garbage" * 100),
        "checkpoint {tmp}/weights.pt cannot be read as weights (it is neither a safetensors file nor a PyTorch",
    ),
    Bad(
        "checkpoint/empty",
        lambda t: checkpoint(t, b""),
        "checkpoint {tmp}/weights.pt cannot be read as weights (it is empty)",
    ),
    Bad(
        "checkpoint/wrong-architecture",
        lambda t: checkpoint(t, {"visual.proj": torch.zeros(3, 3), "token_embedding.weight": torch.zeros(2, 2)}),
        "checkpoint {tmp}/weights.pt does not match the architecture descbench-tiny: Error(s) in loading state_dict "
        "for CLIP: Missing key(s) in state_dict:",
    ),
    Bad(
        "checkpoint/truncated",
        lambda t: after(checkpoint(t, tiny_state()), cut_file(t / "weights.pt")),
        "checkpoint {tmp}/weights.pt cannot be read as weights",
    ),
    Bad(
        "bundle/only-model.pt",
        lambda t: bundle(t, {"model.pt": "torch"}),
        "model bundle {tmp}/bundle has no weights file that open_clip reads",
    ),
    Bad(
        "bundle/two-safetensors",
        lambda t: bundle(t, {"aaa_old.safetensors": "copy", "open_clip_model.safetensors": "copy"}),
        "has several weights files (aaa_old.safetensors, open_clip_model.safetensors)",
    ),
    Bad(
        "bundle/no-config",
        lambda t: bundle(t, {"open_clip_model.safetensors": "copy"}, None),
        "{tmp}/bundle is not a model bundle: expected open_clip_config.json",
    ),
    Bad(
        "bundle/config-not-json",
        lambda t: bundle(t, {"open_clip_model.safetensors": "copy"}, "{ nope"),
        "{tmp}/bundle",
    ),
    Bad(
        "bundle/garbage-weights",
        lambda t: bundle(t, {"open_clip_model.safetensors": "garbage"}),
        "model bundle {tmp}/bundle: the weights file {tmp}/bundle/open_clip_model.safetensors cannot be read as weights",
    ),
    Bad(
        "bundle/weights-of-another-model",
        lambda t: bundle(t, {"open_clip_model.safetensors": "tiny"}),
        "model bundle {tmp}/bundle could not be loaded from open_clip_model.safetensors: text pos_embed width",
    ),
    Bad(
        "bundle/named-file-absent",
        lambda t: bundle(t, {"open_clip_model.safetensors": "copy"}, "copy", "backbone.weights_file=other.bin"),
        "backbone.weights_file='other.bin' is not a file in the bundle {tmp}/bundle",
    ),
]

LLM_SERVERS = [
    Bad("llm/http-500", llm_case(), "the server answered HTTP 500", server=lambda r: Reply(status=500)),
    Bad("llm/http-401", llm_case(), "the server answered HTTP 401", server=lambda r: Reply(status=401)),
    Bad(
        "llm/malformed-body",
        llm_case(),
        "the server's answer is not a chat completion (no 'choices' list",
        server=lambda r: Reply(body={"unexpected": "shape"}),
    ),
    Bad(
        "llm/not-json-body",
        llm_case(),
        "the server's answer is not JSON",
        server=lambda r: Reply(raw=b"<html>502 Bad Gateway</html>"),
    ),
    Bad("llm/empty-content", llm_case(), "has no '- ' bullet for 12 class(es)", server=lambda r: Reply(text="")),
    Bad(
        "llm/no-choices",
        llm_case(),
        "has no '- ' bullet for 12 class(es)",
        server=lambda r: Reply(
            body={"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []}
        ),
    ),
]

OUTPUT_DIRS = [
    Bad(
        "output/run-dir-under-a-file",
        lambda t: PHOTOS,
        "cannot write to the run dir {tmp}/plain-file/sub",
        run_dir=not_a_dir,
    ),
    Bad(
        "output/run-dir-is-a-file",
        lambda t: PHOTOS,
        "cannot write to the run dir {tmp}/run-file",
        run_dir=lambda t: write(t / "run-file", "x"),
    ),
]

# --------------------------------------------------------------------------- the new surfaces (issue 23)

KP_COLOURS = {"red dot": (220, 0, 0), "blue dot": (0, 0, 220), "green dot": (0, 180, 0)}
KP_POINTS = {"red dot": [12, 12], "blue dot": [52, 12], "green dot": [32, 38]}


def kp_line(k: int, **changes) -> dict:
    item = {
        "file_name": f"kp{k}.png",
        "category": "widget",
        "box": [2, 2, 60, 44],
        "keypoints": {n: [x + k, y] for n, (x, y) in KP_POINTS.items()},
    }
    item.update(changes)
    return item


def keypoints(tmp: Path, lines: list[dict] | None = None, *extra: str) -> list[str]:
    """``task=keypoints dataset=keypoints_jsonl`` over four 64x48 images with three coloured dots."""
    for k in range(4):
        path = tmp / "kp" / f"kp{k}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48), (230, 230, 230)).save(path)
    lines = [kp_line(k) for k in range(4)] if lines is None else lines
    path = write(tmp / "kp.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    return [
        "task=keypoints",
        "dataset=keypoints_jsonl",
        f"dataset.builder.path={path}",
        f"dataset.builder.image_root={tmp / 'kp'}",
        "backbone=tiny",
        "task.num_workers=0",
        *extra,
    ]


def persons(tmp: Path, lines: list[dict] | None = None, *extra: str) -> list[str]:
    """``task=marking_bias dataset=persons_jsonl`` over three 160x120 images with a person-sized box."""
    for k in range(3):
        path = tmp / "pb" / f"p{k}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (160, 120), (120, 160, 200)).save(path)
    lines = [{"file_name": f"p{k}.png", "boxes": [[20, 20, 41, 91]]} for k in range(3)] if lines is None else lines
    path = write(tmp / "pb.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    return [
        "task=marking_bias",
        "dataset=persons_jsonl",
        f"dataset.builder.path={path}",
        f"dataset.builder.image_root={tmp / 'pb'}",
        "task.num_workers=0",
        *extra,
    ]


ONE_PHRASE = "phrases:\n  - {id: a, text: 'a photo', kind: negative}\n"
KP_OUTSIDE = {"red dot": [500, 500], "blue dot": [-300, 20], "green dot": [90, 900]}

NEW_SURFACES = [
    Bad(
        "keypoints/image-id-shared-by-two-files",
        lambda t: keypoints(t, [kp_line(0, image_id="I"), kp_line(3, image_id="I"), kp_line(1), kp_line(2)]),
        "{tmp}/kp.jsonl:2: image_id I has file_name 'kp3.png', but {tmp}/kp.jsonl:1 gave it 'kp0.png': one image id",
    ),
    Bad(
        "keypoints/duplicate-part-names",
        lambda t: keypoints(t, None, "dataset.builder.parts=['red dot','red dot','blue dot','green dot']"),
        "{tmp}/kp.jsonl: the given parts (dataset.builder.parts) name 'red dot' twice: list each part once",
    ),
    Bad(
        "keypoints/every-keypoint-outside-the-image",
        lambda t: keypoints(t, [kp_line(k, keypoints=KP_OUTSIDE) for k in range(4)]),
        "{tmp}/kp.jsonl: no instance with a visible keypoint was read (12 keypoint(s) lie outside their image)",
    ),
    Bad(
        "keypoints/part-names-that-are-result-keys",
        lambda t: keypoints(t, [kp_line(k, keypoints={"ci_low": [12, 12], "ci_high": [52, 12]}) for k in range(4)]),
        "part name 'ci_low' is a reserved result-key word (published, ci_low, ci_high, ci_method, reps, std)",
    ),
    Bad(
        "keypoints/template-unknown-field",
        lambda t: keypoints(t, None, "task.template='the {part} of a {category} {oops}'"),
        "task.template='the {part} of a {category} {oops}' uses {oops}: its fields are {part}, {category}",
    ),
    Bad("keypoints/alpha-inf", lambda t: keypoints(t, None, "task.alpha=inf"), "task.alpha=inf is not a finite number"),
    Bad("keypoints/alpha-nan", lambda t: keypoints(t, None, "task.alpha=nan"), "task.alpha=nan is not a finite number"),
    Bad(
        "bias/image-id-shared-by-two-files",
        lambda t: persons(
            t,
            [
                {"file_name": "p0.png", "image_id": 7, "boxes": [[20, 20, 41, 91]]},
                {"file_name": "p1.png", "image_id": 7, "boxes": [[90, 10, 41, 91]]},
            ],
        ),
        "{tmp}/pb.jsonl:2: image 7 (p1.png) was given by line 1 already: one line per image",
    ),
    Bad(
        "bias/none-asked",
        lambda t: persons(t, None, "visual_prompt=none"),
        "task=marking_bias marks the person with one visual prompt, got none: choose one marking other than none",
    ),
    Bad(
        "bias/an-ensemble-asked",
        lambda t: persons(t, None, "visual_prompt=[circle,rectangle]"),
        "task=marking_bias marks the person with one visual prompt, got circle(colour=[255, 0, 0],thickness=2.0) + "
        "rectangle(colour=[255, 0, 0],thickness=2.0)",
    ),
    Bad(
        "bias/one-phrase",
        lambda t: persons(t, None, f"task.phrases={write(t / 'one.yaml', ONE_PHRASE)}"),
        "{tmp}/one.yaml lists 1 phrase: the probe needs at least 2",
    ),
    Bad(
        "bias/phrases-not-yaml",
        lambda t: persons(t, None, f"task.phrases={write(t / 'p.yaml', 'phrases: [{id: a')}"),
        "phrase file {tmp}/p.yaml is not valid YAML: ",
    ),
    Bad(
        "bias/phrases-not-utf8",
        lambda t: persons(
            t, None, f"task.phrases={write(t / 'p.yaml', f'phrases: [{SECRET_BYTES}]'.encode('latin-1'))}"
        ),
        "phrase file {tmp}/p.yaml is not UTF-8 text",
        forbid=(SECRET_BYTES, "PAYLOAD"),
    ),
    Bad(
        "bias/person-box-outside-the-image",
        lambda t: persons(t, [{"file_name": "p0.png", "boxes": [[200, 20, 41, 91]]}]),
        "{tmp}/pb.jsonl:1: box 0 [200, 20, 41, 91] lies outside its 160x120 image",
    ),
    Bad(
        "rec/template-unknown-field",
        rec_photos("task.template='a photo of {expression} {oops}'"),
        "task.template='a photo of {expression} {oops}' uses {oops}: its fields are {expression}",
    ),
    Bad(
        "rec/split-named-like-a-result-key",
        lambda t: rec_jsonl(t, [rec_line(split="ci_low")], split="ci_low"),
        "split name 'ci_low' is a reserved result-key word",
    ),
    Bad(
        "config/plus-top-level-key",
        photos("+num_descs=3"),
        "num_descs is not an option (added with +num_descs=...?): nothing reads a top-level 'num_descs'",
    ),
    Bad("config/entropy-scale-nan", photos("task.entropy_scale=nan"), "task.entropy_scale=nan is not a finite number"),
    Bad(
        "llm/export-under-a-file",
        lambda t: [f"describe.export={not_a_dir(t) / 'x.json'}"],
        "cannot write the descriptor file {tmp}/plain-file/sub/x.json (a part of its path is a file, not a directory)",
        server=canned,
    ),
]


CASES = (
    CONFIGS
    + DESCRIPTION_FILES
    + IMAGE_FOLDERS
    + CUB
    + REC_FILES
    + CHECKPOINTS
    + LLM_SERVERS
    + OUTPUT_DIRS
    + NEW_SURFACES
)


# --------------------------------------------------------------------------- checks


def error_line(stderr: str, expect: str) -> str:
    """The one ``error: `` line of ``stderr``; it must contain ``expect``; no traceback anywhere."""
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, stderr[-3000:]
    assert expect in lines[0], lines[0]
    return lines[0]


def assert_nothing_half_written(tmp: Path, run_dir: Path | None, failed: bool = True) -> None:
    """No temp file anywhere, every cache file whole (its checksum holds), no results.json for a failed run."""
    leftovers = [p for p in tmp.rglob("*.tmp")]
    assert not leftovers, leftovers
    if failed and run_dir is not None and run_dir.exists():
        assert not (run_dir / "results.json").exists()
        assert not (run_dir / "predictions.csv").exists()
    for path in (tmp / "cache").rglob("*.safetensors"):
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        assert meta.get("sha256") == tensors_sha256(tensors), path
    for path in (tmp / "cache").rglob("*.json"):
        record = json.loads(path.read_text())
        assert record.get("descriptors"), path  # never an answer without a descriptor


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_line(case: Bad, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-secret")
    overrides = case.make(tmp_path)
    run_dir = case.run_dir(tmp_path) if case.run_dir else tmp_path / "run"
    server = OpenAIStubServer(case.server).start() if case.server else None
    try:
        if server is not None:
            overrides = llm_args(server.base_url, *overrides)
        cfg = compose_config(overrides, tmp_path)
        code, results = run_reporting(cfg, RunContext(run_dir=run_dir, multirun=case.multirun))
    finally:
        if server is not None:
            server.stop()
    out = capsys.readouterr()
    assert code == 2 and results is None, out.err[-3000:]
    line = error_line(out.err, case.expect.replace("{tmp}", str(tmp_path)))
    for text in case.forbid:
        assert text not in out.err + out.out
    assert "\n" not in line
    if run_dir.is_dir():  # the job's dir keeps the same line
        assert (run_dir / ERROR_FILE).read_text().strip() == line.removeprefix("error: ")
    assert_nothing_half_written(tmp_path, run_dir)


def test_matrix_is_large_enough():
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)


# --------------------------------------------------------------------------- the command line


def assert_failed_cleanly(proc: subprocess.CompletedProcess, expect: str, tmp: Path, run_dir: Path | None) -> str:
    """Exit code 2, one ``error:`` line holding ``expect``, no traceback, nothing half-written."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = error_line(proc.stderr, expect)
    assert_nothing_half_written(tmp, run_dir)
    return line


#: what only the command line does: Hydra composes (and refuses) the config before any descbench code runs
COMMAND_LINE = [
    ("hydra/misspelled-key", ["task.aggregatio=max"], "Key 'aggregatio' not in 'Builds_ClassifyTask'"),
    ("hydra/wrong-type", ["task.batch_size=abc"], "Value 'abc' of type 'str' could not be converted to Integer"),
    (
        "hydra/unknown-option",
        ["dataset=imagenett"],
        "Could not find 'dataset/imagenett' Available options in 'dataset'",
    ),
    ("hydra/override-syntax", ["describe.template={x}"], "no viable alternative at input '{x}'"),
    ("hydra/unknown-env", ["dataset.builder.views=${oc.env:DESCBENCH_NOPE}"], "'DESCBENCH_NOPE' not found"),
]


#: refused while Hydra composes (the schemas, derived from signatures, type every option and list every choice)
COMPOSE = [
    ("compose/seed", ["seed=abc"], "Value 'abc' of type 'str' could not be converted to Integer full_key: seed"),
    ("compose/limit-text", ["dataset.limit=abc"], "could not be converted to Integer full_key: dataset.limit"),
    (
        "compose/limit_seed",
        ["dataset.limit_seed=abc"],
        "could not be converted to Integer full_key: dataset.limit_seed",
    ),
    ("compose/rule", ["describe.rule=nope"], "Invalid value 'nope', expected one of [corrected, faithful]"),
    ("compose/cache-verify", ["cache.verify=mtime"], "Invalid value 'mtime', expected one of [stat, content]"),
    (
        "compose/backend-api",
        ["describe=llm", "describe/backend=openai", "describe.backend.api=chatty"],
        "Invalid value 'chatty', expected one of [completions, chat] full_key: describe.backend.api",
    ),
    ("compose/aggregation", ["task.aggregation=nope"], "expected one of [score_mean, embed_mean, max]"),
    ("compose/empty-mode", ["describe=file", "describe.empty=drop"], "expected one of [classname, menon, error]"),
    ("compose/ensemble", ["describe=templates", "describe.ensemble=nope"], "expected one of [openai, simple]"),
    ("compose/waffle-kind", ["describe=waffle", "describe.kind=nope"], "expected one of [words, chars, both]"),
    ("compose/rec-limit", ["task=rec", "dataset.limit=abc"], "full_key: dataset.limit"),
    (
        "compose/relations",
        ["task=rec", "task.relations=maybe"],
        "expected one of [none, rules] full_key: task.relations",
    ),
    ("compose/geometry", ["task=rec", "task.image_processing=wide"], "expected one of [squash, pad, crop]"),
    ("compose/keypoint-mode", ["task=keypoints", "task.mode=find"], "expected one of [localization, naming]"),
]


@pytest.mark.parametrize("name, args, expect", COMPOSE, ids=[c[0] for c in COMPOSE])
def test_config_refused_while_composing_is_one_line_naming_the_key(name, args, expect, tmp_path):
    """What ``python -m descbench.eval`` prints (``run_entry``: Hydra's message as one line) before anything runs."""
    from hydra.errors import ConfigCompositionException

    from descbench.shell.config import hydra_error_message

    with pytest.raises(ConfigCompositionException) as err:
        compose_config([*(PHOTOS if "task=rec" not in args else []), *args], tmp_path)
    line = hydra_error_message(err.value)
    assert "\n" not in line and expect in line, line


@pytest.mark.parametrize("name, args, expect", COMMAND_LINE, ids=[c[0] for c in COMMAND_LINE])
def test_config_hydra_refuses_is_one_clear_line(name, args, expect, tmp_path):
    proc = run_eval([*PHOTOS, "logger=none", *args, f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert_failed_cleanly(proc, expect, tmp_path, tmp_path / "run")


def test_llm_server_that_hangs_past_the_timeout(tmp_path):
    with OpenAIStubServer(lambda r: Reply(text="- x", delay=6.0)) as server:
        args = llm_args(server.base_url, "describe.backend.timeout=1", "describe.concurrency=1")
        proc = run_eval(
            [*args, "logger=none", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, env={"OPENAI_API_KEY": "sk-x"}
        )
    line = assert_failed_cleanly(proc, "request timed out (1 s) after 0 retries", tmp_path, tmp_path / "run")
    assert "12 of 12 classes missing" in line and not list((tmp_path / "cache").rglob("llm/*.json"))


def test_llm_server_that_drips_its_answer_meets_the_deadline(tmp_path):
    """One byte every 0.5 s never lets a read time out; ``timeout=2`` is a deadline for the whole request."""
    with OpenAIStubServer(lambda r: Reply(text="- x\n- y", drip=0.5)) as server:
        args = llm_args(server.base_url, "describe.backend.timeout=2", "describe.concurrency=1")
        start = time.monotonic()
        proc = run_eval(
            [*args, "logger=none", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, env={"OPENAI_API_KEY": "sk-x"}
        )
        took = time.monotonic() - start
    line = assert_failed_cleanly(proc, "request timed out (2 s) after 0 retries", tmp_path, tmp_path / "run")
    assert "no complete answer within describe.backend.timeout seconds" in line
    assert took < 60, took  # each answer alone would drip for ~2 minutes


def test_run_dir_under_a_file_from_the_command_line(tmp_path):
    run_dir = not_a_dir(tmp_path)
    proc = run_eval([*PHOTOS, "logger=none", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert_failed_cleanly(
        proc, f"cannot create the output dir {run_dir} (Not a directory): choose another", tmp_path, None
    )
    sweep = tmp_path / "plain-file" / "sweep"
    proc = run_eval(["-m", *PHOTOS, "logger=none", "num_desc=1,2", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert_failed_cleanly(proc, f"cannot create the output dir {sweep} (Not a directory)", tmp_path, None)


def test_results_json_is_strict_json_whatever_the_numbers():
    from descbench.core.results import results_text

    text = results_text({"pck": float("inf"), "x": {"y": [float("nan"), -float("inf")]}, "n": np.float32(0.5)})

    def refuse(constant: str):
        raise AssertionError(f"bare {constant} in results.json")

    assert json.loads(text, parse_constant=refuse) == {"pck": "inf", "x": {"y": [None, "-inf"]}, "n": 0.5}


def test_random_init_composes_as_the_readme_writes_it_and_is_honoured(tmp_path):
    """``backbone.random_init=true`` (README, "Weights are what they say") composes for a named model and for the
    default bundle, and gives random weights of that architecture, labelled so (not the pretrained ones)."""
    from descbench.core.backbone import build_backbone
    from descbench.shell.config import build

    cfg = compose_config(["backbone=vit_b32", "backbone.random_init=true", "seed=3"], tmp_path)
    assert cfg.backbone.random_init is True and cfg.backbone.pretrained == "openai" and cfg.backbone.seed == 3
    cfg = compose_config(["backbone.random_init=true", "seed=3"], tmp_path)
    random = build(cfg.backbone)
    trained = build_backbone(cfg.backbone.model)
    assert random.describe() == {"backbone": "shapes-clip", "pretrained": None, "weights": "random (seed 3)"}
    assert trained.describe()["weights"] == "pretrained" and random.identity != trained.identity
    a, b = (dict(m.model.state_dict()) for m in (random, trained))
    assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)
    again = build_backbone(cfg.backbone.model, random_init=True, seed=3)
    assert all(torch.equal(a[k], v) for k, v in again.model.state_dict().items())  # seeded


def test_disk_full_leaves_no_partial_outputs_and_names_the_file(tmp_path):
    """A file-size limit (the shell's ``ulimit -f``) stands for a full disk: the cache degrades with a warning, the
    outputs are refused whole. DataLoader workers are off: the limit would also hit their shared-memory files."""
    import resource

    # Hydra's own files (about 4 KB with an xdist worker's tmp path: hydra.yaml names the run dir) stay below the
    # limit; the text features (6.6 KB) and predictions.csv of the 480 images (about 40 KB) do not
    limit = 6144
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DESCBENCH_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "descbench.eval", "logger=none", "describe=classname"]
        + ["task.num_workers=0", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
    )
    line = assert_failed_cleanly(
        proc, f"could not write predictions.csv in {run_dir} (File too large)", tmp_path, run_dir
    )
    assert "removed the partial outputs" in line
    assert sorted(p.name for p in run_dir.iterdir() if p.is_file()) == [ERROR_FILE, "eval.log"]
    assert (run_dir / "eval.log").read_text().count("cannot be written") == 1  # the cache: one warning, no cache
    assert not list((tmp_path / "cache").rglob("*.safetensors"))


def test_a_failed_multirun_point_lets_the_others_finish_and_is_listed(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_eval(["-m", *PHOTOS, "logger=none", "num_desc=0,2", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert json.loads((sweep / "1" / "results.json").read_text())["describe.num_desc"] == 2
    assert not (sweep / "0" / "results.json").exists()
    message = "num_desc must be an integer >= 1, got 0 (set num_desc=1..7)"
    assert (sweep / "0" / ERROR_FILE).read_text().strip() == message
    tail = proc.stderr[proc.stderr.index("1 job(s) of the sweep failed:") :].splitlines()
    assert tail == ["1 job(s) of the sweep failed:", f"  {sweep / '0'}: {message}"]


def test_two_jobs_started_in_the_same_second_keep_two_run_dirs(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DESCBENCH_CACHE_DIR": str(tmp_path / "cache")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "descbench.eval", *PHOTOS, "logger=none", f"num_desc={n}"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (1, 2)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    found = sorted(tmp_path.glob("outputs/*/runs/*/results.json"))
    assert len(found) == 2 and found[0].parent != found[1].parent
    assert sorted(json.loads(p.read_text())["describe.num_desc"] for p in found) == [1, 2]


KILLED_WRITER = """
import sys, time
from pathlib import Path
from descbench.core.files import write_atomic

def slow(tmp: Path) -> None:
    with open(tmp, "wb") as handle:
        handle.write(b"x" * 65536)
        handle.flush()
        print("writing", flush=True)
        time.sleep(60)
        handle.write(b"y" * 65536)

write_atomic(sys.argv[1], slow)
"""


@pytest.mark.parametrize("before", [None, b'{"top1": 0.5}'], ids=["new", "replaced"])
def test_kill_9_during_a_write_leaves_the_target_absent_or_whole(tmp_path, before):
    target = tmp_path / "results.json"
    if before is not None:
        target.write_bytes(before)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    if before is None:
        assert not target.exists()
    else:
        assert target.read_bytes() == before
    # anything else the kill left is a hidden temp file, which no reader takes for the target
    others = [p.name for p in tmp_path.iterdir() if p != target]
    assert all(name.startswith(".results.json.") and name.endswith(".tmp") for name in others), others


# --------------------------------------------------------------------------- inputs that must succeed


def evaluate_in(tmp: Path, name: str, overrides: list[str], cache: Path | None = None) -> tuple[dict, str, dict]:
    """``(results.json, predictions.csv, objects)`` of an in-process run into ``tmp/name``."""
    from descbench.eval import evaluate

    cfg = compose_config([*overrides, f"paths.cache_dir={cache or tmp / 'cache'}"], tmp)
    _, objects = evaluate(cfg, RunContext(run_dir=tmp / name))
    run = tmp / name
    return json.loads((run / "results.json").read_text()), (run / "predictions.csv").read_text(), objects


def same_outcome(a: tuple, b: tuple) -> None:
    for key in ("top1", "top5", "mean_per_class_acc", "entropy", "ece", "per_class_acc"):
        assert a[0][key] == b[0][key], key
    assert a[1] == b[1]


def image_feature_file(cache: Path) -> Path:
    (path,) = (cache / "image_features").glob("*.safetensors")
    return path


def test_zeroed_block_in_the_image_feature_cache_is_recomputed(tmp_path, caplog):
    args = ["dataset.limit=48", "describe=world"]
    cold = evaluate_in(tmp_path, "cold", args)
    path = image_feature_file(tmp_path / "cache")
    size = path.stat().st_size
    block = min(16384, size // 4)
    with open(path, "r+b") as handle:
        handle.seek(size - block)
        handle.write(bytes(block))
    with caplog.at_level("WARNING", logger="descbench"):
        damaged = evaluate_in(tmp_path, "damaged", args)
    assert "is damaged (checksum mismatch): recomputing" in caplog.text
    assert damaged[2]["module"].features_input is False
    same_outcome(damaged, cold)
    warm = evaluate_in(tmp_path, "warm", args)  # the file was rewritten whole
    assert warm[2]["module"].features_input is True
    same_outcome(warm, cold)
    assert_nothing_half_written(tmp_path, None, failed=False)


def test_unwritable_cache_dir_is_one_warning_and_the_results_are_written(tmp_path, caplog):
    args = [*PHOTOS, "num_desc=2"]
    with caplog.at_level("WARNING", logger="descbench"):
        run = evaluate_in(tmp_path, "run", args, cache=not_a_dir(tmp_path))
    assert caplog.text.count("cannot be written") == 1, caplog.text
    same_outcome(run, evaluate_in(tmp_path, "reference", [*args, "cache.features=false", "cache.text=false"]))


def replace_images(root: Path, colour: tuple[int, int, int], keep_stat: bool) -> None:
    """Every image under ``root`` replaced in place by a plain ``colour`` one of the same size and format;
    ``keep_stat``: its size and modification time kept too (only its bytes tell)."""
    for path in sorted(root.rglob("*.bmp")):
        stat = path.stat()
        Image.new("RGB", Image.open(path).size, colour).save(path)
        assert path.stat().st_size == stat.st_size
        if keep_stat:
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        else:
            os.utime(path, (946684800, 946684800))  # 2000-01-01, as `touch -d` in the acceptance script


@pytest.mark.parametrize("verify", ["stat", "content"])
def test_images_replaced_in_place_are_not_served_from_the_cache(tmp_path, verify):
    colours = {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 200, 30)}
    root = tmp_path / "val"
    for name, colour in colours.items():
        (root / name).mkdir(parents=True)
        for j in range(2):
            shade = tuple(min(255, c + 10 * j) for c in colour)
            Image.new("RGB", (32, 32), shade).save(root / name / f"{j}.bmp")
    args = ["dataset=imagefolder", f"dataset.builder.root={root}", "backbone=tiny", "describe=classname"]
    args += [f"cache.verify={verify}", "task.num_workers=0"]
    first = evaluate_in(tmp_path, "first", args)
    replace_images(root, (128, 128, 128), keep_stat=verify == "content")
    again = evaluate_in(tmp_path, "again", args)
    cold = evaluate_in(tmp_path, "cold", args, cache=tmp_path / "cold-cache")
    assert again[2]["module"].features_input is False
    same_outcome(again, cold)
    assert first[1] != cold[1]  # the replaced images do score differently


def test_16_bit_png_decodes_like_its_8_bit_twin(tmp_path):
    root = tmp_path / "val"
    for name in ("wide", "narrow"):
        (root / name).mkdir(parents=True)
    grey = np.arange(32 * 32, dtype=np.uint32).reshape(32, 32) % 256
    Image.fromarray((grey * 257).astype(np.uint16)).save(root / "wide" / "a.png")  # 16-bit greyscale
    Image.fromarray(grey.astype(np.uint8)).save(root / "narrow" / "a.png")
    assert Image.open(root / "wide" / "a.png").mode in ("I;16", "I")
    args = ["dataset=imagefolder", f"dataset.builder.root={root}", "backbone=tiny", "describe=classname"]
    results, _, objects = evaluate_in(tmp_path, "run", [*args, "task.num_workers=0"])
    dataset = objects["dataset"]
    wide, narrow = dataset.classes.index("wide"), dataset.classes.index("narrow")
    assert torch.equal(dataset[wide][0], dataset[narrow][0])
    features = objects["module"].predictions["features"]
    assert torch.equal(features[wide], features[narrow])
    white = Image.new("RGB", (32, 32), (255, 255, 255))
    assert not torch.equal(dataset[wide][0], objects["backbone"].preprocess(white))


def test_garbled_llm_and_text_caches_are_asked_again(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-secret")
    with OpenAIStubServer() as server:
        args = llm_args(server.base_url)
        first = evaluate_in(tmp_path, "first", args)
        calls = len(server.requests)
        answers = sorted((tmp_path / "cache" / "llm").glob("*.json"))
        assert len(answers) == calls == 12
        answers[0].write_text('{"key": "')  # cut short
        (text_file,) = (tmp_path / "cache" / "text_features").glob("*.safetensors")
        text_file.write_bytes(text_file.read_bytes()[:100])
        again = evaluate_in(tmp_path, "again", [*args, "cache.features=false"])
        assert len(server.requests) == calls + 1  # only the garbled answer is asked again
    same_outcome(again, first)
    assert_nothing_half_written(tmp_path, None, failed=False)


def test_unwritable_llm_cache_keeps_the_answers_for_the_run(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-secret")
    with OpenAIStubServer() as server, caplog.at_level("WARNING"):
        run = evaluate_in(tmp_path, "run", llm_args(server.base_url, f"describe.cache_dir={not_a_dir(tmp_path)}"))
    assert caplog.text.count("description cache dir") == 1
    assert run[0]["describe.source"] == "llm" and len(server.requests) == 12
    assert run[0]["describe.stats.num_fallback"] == 0
