"""Folder datasets: ImageNet validation, ImageNetV2, any ImageFolder with a class-name file, CUB-200-2011."""

from __future__ import annotations

from pathlib import Path

from torchvision.datasets import ImageFolder

from descbench.core.files import read_json_file, read_text_file
from descbench.datasets.base import ALPHA_BACKGROUND, DatasetError, EvalDataset, load_image, read_curated_names

IMAGENET_LAYOUT = "<root>/val/<wnid>/*.JPEG (1000 folders such as n01440764)"


def imagenet_classes() -> tuple[list[str], list[str]]:
    """The 1000 wnids (sorted = label order) and CLIP's curated class names."""
    table = read_curated_names("imagenet")
    return list(table), list(table.values())


def _image_folder(root: Path, layout: str, dataset: str) -> ImageFolder:
    if not root.is_dir():
        raise DatasetError(f"dataset {dataset}: folder not found: {root} (expected layout: {layout})")
    try:
        return ImageFolder(str(root), loader=load_image)
    except (FileNotFoundError, RuntimeError) as err:
        raise DatasetError(f"dataset {dataset}: {root} does not have the layout {layout}: {err}") from err


def load_imagenet(root: str, split: str = "val", transform=None) -> EvalDataset:
    """ImageNet-1k validation in the standard folder layout, labelled with the curated names."""
    folder = _image_folder(Path(root) / split, IMAGENET_LAYOUT, "imagenet")
    wnids, names = imagenet_classes()
    if folder.classes != wnids:
        unknown = sorted(set(folder.classes) - set(wnids))[:5]
        missing = sorted(set(wnids) - set(folder.classes))[:5]
        raise DatasetError(
            f"dataset imagenet: {Path(root) / split} must hold the 1000 wnid folders "
            f"(found {len(folder.classes)}; unknown {unknown}, missing {missing}); layout {IMAGENET_LAYOUT}"
        )
    return EvalDataset(
        name="imagenet",
        classes=names,
        base=folder,
        split=split,
        transform=transform,
        class_ids=wnids,
        provenance={"class_names": "CLIP's curated ImageNet names", "alpha": f"composited on {ALPHA_BACKGROUND}"},
    )


IMAGENETV2_VARIANTS = ("matched-frequency", "threshold0.7", "top-images")
IMAGENETV2_LAYOUT = "<root>/imagenetv2-<variant>-format-val/<class index 0..999>/*.jpeg"


class _IndexFolders(ImageFolder):
    """An ImageFolder whose class folders are named by the class index (``0`` .. ``999``), not sorted as text."""

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        names = [p.name for p in Path(directory).iterdir() if p.is_dir()]
        if sorted(names, key=lambda n: (not n.isdigit(), int(n) if n.isdigit() else 0, n)) != [
            str(i) for i in range(len(names))
        ]:
            raise DatasetError(
                f"dataset imagenetv2: {directory} must hold the class folders 0..999 (found {len(names)}: "
                f"{sorted(names)[:5]}...); layout {IMAGENETV2_LAYOUT}"
            )
        return [str(i) for i in range(len(names))], {str(i): i for i in range(len(names))}


def load_imagenetv2(root: str, variant: str = "matched-frequency", transform=None) -> EvalDataset:
    """ImageNetV2 (Recht et al. 2019) in its released layout: a folder per class named by its ImageNet class
    index, labelled with CLIP's curated ImageNet names (as Menon & Vondrick's ``load.py`` labels it)."""
    if variant not in IMAGENETV2_VARIANTS:
        raise DatasetError(f"dataset imagenetv2: variant {variant!r} is not one of {', '.join(IMAGENETV2_VARIANTS)}")
    folder_root = Path(root) / f"imagenetv2-{variant}-format-val"
    if not folder_root.is_dir():
        raise DatasetError(
            f"dataset imagenetv2: folder not found: {folder_root} (expected layout: {IMAGENETV2_LAYOUT})"
        )
    try:
        folder = _IndexFolders(str(folder_root), loader=load_image, allow_empty=True)
    except (FileNotFoundError, RuntimeError) as err:
        raise DatasetError(
            f"dataset imagenetv2: {folder_root} does not have the layout {IMAGENETV2_LAYOUT}: {err}"
        ) from err
    wnids, names = imagenet_classes()
    if len(folder.classes) != len(wnids):
        raise DatasetError(
            f"dataset imagenetv2: {folder_root} holds {len(folder.classes)} class folders, ImageNet has {len(wnids)} "
            f"(0..{len(wnids) - 1}); layout {IMAGENETV2_LAYOUT}"
        )
    if not folder.samples:
        raise DatasetError(f"dataset imagenetv2: {folder_root} holds no image (layout {IMAGENETV2_LAYOUT})")
    empty = len(wnids) - len({label for _, label in folder.samples})
    return EvalDataset(
        name="imagenetv2",
        classes=names,
        base=folder,
        split=variant,
        transform=transform,
        class_ids=wnids,
        provenance={
            "class_names": "CLIP's curated ImageNet names (folder = class index)",
            "alpha": f"composited on {ALPHA_BACKGROUND}",
            "variant": variant,
            "classes_without_images": empty,
        },
    )


def read_class_names(path: str | Path) -> dict[str, str]:
    """A class-name file: one ``folder<TAB>name`` (or ``folder name...``) per line."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(
            f"class-name file not found: {path} (dataset.builder.class_names; one 'folder<TAB>name' per line)"
        )
    names: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, line in enumerate(read_text_file(path, "class-name file", DatasetError).splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t") if "\t" in line else line.split(maxsplit=1)
        if len(parts) != 2:
            raise DatasetError(f"{path}:{number}: expected 'folder<TAB>class name', got {line!r}")
        folder = parts[0].strip()
        if folder in names:
            raise DatasetError(
                f"{path}:{number}: folder {folder!r} is named again (line {lines[folder]} named it {names[folder]!r}): "
                "keep one line per folder"
            )
        names[folder], lines[folder] = parts[1].strip(), number
    return names


def load_image_folder(
    root: str, class_names: str | None = None, name: str = "imagefolder", descriptors: str | None = None, transform=None
) -> EvalDataset:
    """Any ``<root>/<class folder>/*.jpg`` set; names from ``class_names`` or the folder names.

    ``descriptors``: optional JSON ``{"words": {class: [...]}, "sentences": {class: [...]}}`` that
    ``describe=world`` then uses as this dataset's own descriptors.
    """
    folder = _image_folder(Path(root), "<root>/<class folder>/<image files>", name)
    if class_names is None:
        classes = [c.replace("_", " ") for c in folder.classes]
    else:
        table = read_class_names(class_names)
        missing = [c for c in folder.classes if c not in table]
        if missing:
            raise DatasetError(f"class-name file {class_names} has no name for folders {missing[:10]}")
        absent = [c for c in table if c not in folder.classes]
        if absent:
            raise DatasetError(
                f"class-name file {class_names} lists {len(absent)} class(es) with no image folder under {root}: "
                f"{absent[:10]}; add the folders (with images) or remove the lines"
            )
        classes = [table[c] for c in folder.classes]
    native = None
    if descriptors is not None:
        path = Path(descriptors)
        if not path.is_file():
            raise DatasetError(f"descriptor file not found: {path} (dataset.builder.descriptors)")
        native = read_json_file(path, "descriptor file", DatasetError)
        if (
            not isinstance(native, dict)
            or set(native) != {"words", "sentences"}
            or any(not isinstance(native[k], dict) or set(classes) - set(native[k]) for k in native)
        ):
            raise DatasetError(
                f"{path} must hold {{'words': {{class: [...]}}, 'sentences': {{class: [...]}}}} for every class"
            )
    return EvalDataset(
        name=name,
        classes=classes,
        base=folder,
        transform=transform,
        native=native,
        class_ids=list(folder.classes),
        provenance={
            "class_names": f"class-name file {class_names}" if class_names else "folder names, '_' as spaces",
            "alpha": f"composited on {ALPHA_BACKGROUND}",
        },
    )


def read_cub_index(path: Path) -> dict[str, str]:
    """``{id: value}`` from a CUB index file (``<id> <value>`` per line); a bad line names the file and line."""
    table: dict[str, str] = {}
    for number, line in enumerate(read_text_file(path, "CUB index file", DatasetError).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or not parts[0].isdigit():
            raise DatasetError(
                f"{path}:{number}: expected '<number> <value>', got {line[:80]!r} (the CUB_200_2011 files)"
            )
        table[parts[0]] = parts[1].strip()
    return table


class _CUBTest:
    def __init__(self, root: Path) -> None:
        images = read_cub_index(root / "images.txt")
        labels = read_cub_index(root / "image_class_labels.txt")
        split = read_cub_index(root / "train_test_split.txt")
        for name, table in (("image_class_labels.txt", labels), ("train_test_split.txt", split)):
            absent = [i for i in images if i not in table]
            if absent:
                raise DatasetError(
                    f"dataset cub: {root / name} has no line for {len(absent)} image(s) of images.txt "
                    f"(first ids: {absent[:5]}): use the files of one CUB_200_2011 archive"
                )
        bad = [i for i in images if not labels[i].isdigit() or int(labels[i]) < 1]
        if bad:
            raise DatasetError(
                f"dataset cub: {root / 'image_class_labels.txt'}: image {bad[0]} has label {labels[bad[0]]!r}"
            )
        self.samples = [
            (str(root / "images" / images[i]), int(labels[i]) - 1) for i in sorted(images, key=int) if split[i] == "0"
        ]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        return load_image(path), label


def load_cub(root: str, transform=None) -> EvalDataset:
    """CUB-200-2011 test split from the archive layout (images.txt, classes.txt, images/...)."""
    base = Path(root)
    needed = ["images.txt", "classes.txt", "image_class_labels.txt", "train_test_split.txt", "images"]
    missing = [n for n in needed if not (base / n).exists()]
    if missing:
        raise DatasetError(
            f"dataset cub: {base} lacks {missing} (expected the CUB_200_2011 archive layout: "
            "images.txt, classes.txt, image_class_labels.txt, train_test_split.txt, images/)"
        )
    ids = list(read_cub_index(base / "classes.txt").values())
    test = _CUBTest(base)
    if not test.samples:
        raise DatasetError(f"dataset cub: {base / 'train_test_split.txt'} puts no image in the test split (0)")
    beyond = sorted({label + 1 for _, label in test.samples if label >= len(ids)})
    if beyond:
        raise DatasetError(
            f"dataset cub: {base / 'image_class_labels.txt'} uses class numbers {beyond[:5]} beyond the "
            f"{len(ids)} classes of {base / 'classes.txt'}"
        )
    return EvalDataset(
        name="cub",
        classes=[cub_class_name(c) for c in ids],
        base=test,
        transform=transform,
        class_ids=ids,
        provenance={"class_names": "CUB classes.txt cleaned (number prefix dropped, '_' as spaces)"},
    )


def cub_class_name(raw: str) -> str:
    """``001.Black_footed_Albatross`` -> ``Black footed Albatross`` (CUB's ``classes.txt`` cleaned)."""
    return " ".join(raw.split(".", 1)[-1].replace("_", " ").split())
