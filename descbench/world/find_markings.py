"""Count the captions of a corpus that talk about markings ("circled", "red circle", "arrow pointing").

    python -m descbench.world.find_markings CAPTIONS [--images DIR] [--matches FILE]
        [--caption-key KEY] [--image-key KEY]

``CAPTIONS`` is a text file (one caption per line), a JSON-lines file (``.jsonl``/``.ndjson``: one object per
line) or a parquet file (``.parquet``, read with pyarrow); JSON-lines and parquet name the caption column with
``--caption-key`` (default: the first of caption, text, title, description that is there) and optionally an
image column (``--image-key``; default: the first of image, file_name, filename, key, url that is there).
The word list is ``marking_words.yaml`` beside this module (documented there). The share of marking captions
places a real corpus on the x axis of :mod:`descbench.world.emergence` (the share of training samples whose
described object is circled); the red-circle study searched YFCC15M this way.

``--matches FILE`` writes every marking caption (JSON lines: line/row, caption, kinds, image) for a reader to
check, since a word list cannot tell a red circle drawn on a photo from a red circular sign; ``--images DIR``
looks each match's image up in that folder and records whether it is there.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from descbench.core.errors import UserError
from descbench.core.files import read_json_lines, read_text_file, write_atomic
from descbench.core.stats import wilson_interval

WORDS_FILE = Path(__file__).with_name("marking_words.yaml")
CAPTION_KEYS = ("caption", "text", "title", "description")
IMAGE_KEYS = ("image", "file_name", "filename", "key", "url")
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson", ".json")


@lru_cache(maxsize=1)
def marking_patterns() -> dict[str, re.Pattern]:
    """One compiled pattern per kind of ``marking_words.yaml`` (its patterns joined, on word boundaries)."""
    table = yaml.safe_load(WORDS_FILE.read_text())
    return {kind: re.compile(r"\b(?:" + "|".join(patterns) + r")\b", re.IGNORECASE) for kind, patterns in table.items()}


def marking_kinds(caption: str) -> list[str]:
    """The kinds of marking a caption mentions, in the word list's order (empty: none)."""
    return [kind for kind, pattern in marking_patterns().items() if pattern.search(caption)]


@dataclass
class Caption:
    """One caption of the corpus, where it came from (line or row) and its image name, if the file has one."""

    where: str
    text: str
    image: str | None = None


@dataclass
class Count:
    """What the finder found."""

    total: int = 0
    marked: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    matches: list[dict] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.marked / self.total if self.total else float("nan")


def _pick_key(keys: list[str], given: str | None, defaults: tuple[str, ...], what: str, path: Path) -> str | None:
    if given is not None:
        if given not in keys:
            raise UserError(f"{path} has no {what} column {given!r} (its columns: {', '.join(keys) or 'none'})")
        return given
    return next((k for k in defaults if k in keys), None)


def read_captions(path: Path, caption_key: str | None = None, image_key: str | None = None) -> list[Caption]:
    """The captions of a text, JSON-lines or parquet file (see the module's doc)."""
    if not path.is_file():
        raise UserError(f"captions file {path} not found: give a text, JSON-lines or parquet file of captions")
    if path.suffix == ".parquet":
        return _read_parquet(path, caption_key, image_key)
    if path.suffix in JSON_LINES_SUFFIXES:
        return _read_json_lines(path, caption_key, image_key)
    text = read_text_file(path, "captions file", UserError)
    return [Caption(f"line {n}", line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _read_json_lines(path: Path, caption_key: str | None, image_key: str | None) -> list[Caption]:
    rows = read_json_lines(path, "captions file", UserError)
    keys = sorted({k for _, row in rows if isinstance(row, dict) for k in row})
    cap = _pick_key(keys, caption_key, CAPTION_KEYS, "caption", path)
    if cap is None:
        raise UserError(
            f"{path}: no caption column among {', '.join(CAPTION_KEYS)} (its keys: {', '.join(keys) or 'none'}): "
            "name it with --caption-key"
        )
    img = _pick_key(keys, image_key, IMAGE_KEYS, "image", path)
    out = []
    for number, row in rows:
        if not isinstance(row, dict) or not isinstance(row.get(cap), str):
            raise UserError(f"{path}:{number} is not an object with a text {cap!r}")
        image = row.get(img) if img else None
        out.append(Caption(f"line {number}", row[cap], None if image is None else str(image)))
    return out


def _read_parquet(path: Path, caption_key: str | None, image_key: str | None) -> list[Caption]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(f"reading {path} needs pyarrow: pip install pyarrow (or give a text/JSON-lines file)") from None
    try:
        table = pq.read_table(path)
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ... for a file that is not parquet
        raise UserError(f"{path} cannot be read as parquet: {' '.join(str(err).split())[:200]}") from None
    keys = list(table.column_names)
    cap = _pick_key(keys, caption_key, CAPTION_KEYS, "caption", path)
    if cap is None:
        raise UserError(
            f"{path}: no caption column among {', '.join(CAPTION_KEYS)} (its columns: {', '.join(keys)}): "
            "name it with --caption-key"
        )
    img = _pick_key(keys, image_key, IMAGE_KEYS, "image", path)
    captions = table.column(cap).to_pylist()
    images = table.column(img).to_pylist() if img else [None] * len(captions)
    return [
        Caption(f"row {i}", text, None if image is None else str(image))
        for i, (text, image) in enumerate(zip(captions, images))
        if isinstance(text, str) and text.strip()
    ]


def count_markings(captions: list[Caption], images: Path | None = None) -> Count:
    """Count the captions that mention a marking; each match recorded with its kinds (and image, if any)."""
    count = Count(by_kind={kind: 0 for kind in marking_patterns()})
    for caption in captions:
        count.total += 1
        kinds = marking_kinds(caption.text)
        if not kinds:
            continue
        count.marked += 1
        count.by_kind[kinds[0]] += 1
        match = {"where": caption.where, "caption": caption.text, "kinds": kinds}
        if caption.image is not None:
            match["image"] = caption.image
            if images is not None:
                match["image_found"] = (images / caption.image).is_file()
        count.matches.append(match)
    return count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m descbench.world.find_markings", description=__doc__.splitlines()[0]
    )
    parser.add_argument("captions", type=Path, help="text (one caption per line), .jsonl or .parquet")
    parser.add_argument("--images", type=Path, default=None, help="the folder of the captions' images")
    parser.add_argument("--matches", type=Path, default=None, help="write the marking captions here (JSON lines)")
    parser.add_argument("--caption-key", default=None, help=f"caption column (default: first of {CAPTION_KEYS})")
    parser.add_argument("--image-key", default=None, help=f"image column (default: first of {IMAGE_KEYS})")
    args = parser.parse_args(argv)
    try:
        if args.images is not None and not args.images.is_dir():
            raise UserError(f"image folder {args.images} not found (--images)")
        captions = read_captions(args.captions, args.caption_key, args.image_key)
        if args.images is not None and not any(c.image is not None for c in captions):
            raise UserError(
                f"--images needs captions with an image column: {args.captions} has none "
                "(a JSON-lines or parquet file with --image-key)"
            )
        if not captions:
            raise UserError(f"captions file {args.captions} holds no caption")
        count = count_markings(captions, args.images)
    except UserError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        sys.exit(2)
    if args.matches is not None:
        write_atomic(args.matches, "".join(json.dumps(m) + "\n" for m in count.matches))
    for kind, n in count.by_kind.items():
        print(f"  {kind}: {n}")
    if args.images is not None:
        found = sum(bool(m.get("image_found")) for m in count.matches)
        print(f"  images of the marking captions found in {args.images}: {found} of {count.marked}")
    low, high = wilson_interval(count.marked, count.total)
    print(
        f"{count.marked} of {count.total} captions talk about markings: {100 * count.share:.2f} % "
        f"(Wilson 95 % interval {100 * low:.2f}-{100 * high:.2f} %) in {args.captions}"
    )


if __name__ == "__main__":
    main()
