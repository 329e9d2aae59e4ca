"""What an upload is: its type from its bytes, a safe name, and for images their size and a
thumbnail.

- Type: libmagic (python-magic over Debian's libmagic1) on the first ``SNIFF_BYTES``; what the
  client claims (the part's Content-Type, the name's extension) is ignored, so a script named
  ``cat.png`` is stored as what it is, or refused when that type is not allowed.
- Name: the last path component, Unicode NFC, without control or bidirectional-formatting
  characters, without leading dots, at most ``NAME_MAX`` characters (the extension kept). The
  name is only ever metadata: the store's key is the random upload id.
- Images: Pillow opens the file (header only), refuses more pixels than Pillow's
  decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``, about 89 million) before decoding
  anything, then decodes once to make a ``THUMB_MAX`` thumbnail (JPEGs decode at a reduced
  scale, so a large photo costs a fraction of its full size in memory).
"""

from __future__ import annotations

import io
import os
import unicodedata
import warnings
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

import magic
from PIL import Image, ImageOps, UnidentifiedImageError

from chatcore.errors import Invalid

SNIFF_BYTES = 8192  # libmagic's own default read size for most formats
NAME_MAX = 200
THUMB_MAX = (320, 320)
THUMB_MIME = "image/webp"  # one format for every thumbnail, with or without transparency
THUMBNAILED = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"}
_DROP_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}  # controls, bidi marks, surrogates, unassigned


def sanitise_name(raw: str | None) -> str:
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _DROP_CATEGORIES)
    name = " ".join(name.split()).lstrip(". ").rstrip(" .")
    if not name:
        return "file"
    if len(name) > NAME_MAX:
        stem, ext = os.path.splitext(name)
        ext = ext if len(ext) <= 16 else ""
        name = stem[: NAME_MAX - len(ext)] + ext
    return name


def detect_mime(head: bytes) -> str:
    if not head:
        return "application/x-empty"
    mime = magic.from_buffer(head[:SNIFF_BYTES], mime=True) or "application/octet-stream"
    return mime.lower()


def type_allowed(mime: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatchcase(mime, p) for p in patterns)


@dataclass(frozen=True, slots=True)
class ImageInfo:
    width: int
    height: int
    thumb: bytes  # WebP (THUMB_MIME)


def probe_image(path: Path) -> ImageInfo | None:
    """Size and thumbnail of the image at ``path``; None when Pillow cannot read it (it is kept
    as a file without a preview). Raises ``Invalid`` for a decompression bomb. Blocking: run it
    in a thread."""
    try:
        with warnings.catch_warnings():
            # Pillow warns past MAX_IMAGE_PIXELS and raises only past twice that: refuse both
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = _display_size(img)  # before draft, which shrinks img.size
                img.draft("RGB", (THUMB_MAX[0] * 2, THUMB_MAX[1] * 2))  # JPEG: decode at a reduced scale
                oriented = ImageOps.exif_transpose(img)
                oriented.thumbnail(THUMB_MAX)
                has_alpha = oriented.mode in ("RGBA", "LA", "PA") or "transparency" in oriented.info
                out = io.BytesIO()
                oriented.convert("RGBA" if has_alpha else "RGB").save(out, "WEBP", quality=80)
                return ImageInfo(width, height, out.getvalue())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Invalid(f"the image has more than {Image.MAX_IMAGE_PIXELS} pixels; it is refused as a possible"
                      " decompression bomb", field="file") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def _display_size(img: Image.Image) -> tuple[int, int]:
    """The size as shown: EXIF orientations 5-8 swap width and height."""
    w, h = img.size
    orientation = img.getexif().get(0x0112, 1)
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)
