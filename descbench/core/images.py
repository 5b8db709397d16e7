"""Image sets whose images are loaded on demand by id (REC, keypoints, people): one loader, errors that name the file."""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image

from descbench.core.errors import DatasetError


class ImagesById:
    """Mixin: ``load_image(image_id)`` through ``self._image_loader`` as RGB, ``describe_image(image_id)``
    through ``self._describe``; a missing or unreadable file is an ``image_error`` naming it."""

    image_error: type[DatasetError] = DatasetError
    _image_loader: Callable[[str], Image.Image] | None = None
    _describe: Callable[[str], str] | None = None

    def load_image(self, image_id: str) -> Image.Image:
        """The RGB image ``image_id``."""
        if self._image_loader is None:
            raise NotImplementedError(f"{type(self).__name__} has no image loader")
        try:
            return self._image_loader(image_id).convert("RGB")
        except FileNotFoundError as err:
            raise self.image_error(f"image file not found: {err.filename or self.describe_image(image_id)}") from err
        except OSError as err:
            raise self.image_error(f"cannot read image {self.describe_image(image_id)}: {err}") from err

    def describe_image(self, image_id: str) -> str:
        """What names the image in messages (its file, where it has one)."""
        return self._describe(image_id) if self._describe else f"image {image_id}"
