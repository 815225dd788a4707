"""Image input: any PIL image to 8-bit RGB (numpy and PIL only; the model transform lives in `vitattn.models`).

No crop means a map covers the whole image, so a map cell ``(r, c)`` of a ``gh x gw`` grid covers the normalized
rectangle ``[c / gw, (c + 1) / gw) x [r / gh, (r + 1) / gh)`` of the original image, whatever its aspect ratio, and
lines up with normalized boxes exactly.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# Images larger than this (width x height) are refused before decoding: PIL's own bomb check warns at ~89 MP.
MAX_PIXELS = 50_000_000


def to_rgb(
    image: Image.Image, *, background: tuple[int, int, int] = (255, 255, 255), max_pixels: int = MAX_PIXELS
) -> Image.Image:
    """Converts any PIL image to 8-bit RGB.

    Alpha (RGBA, LA, P with transparency) is composited over ``background``; 16-bit and 32-bit integer or float
    grayscale (I;16, I, F) is scaled by its own range, not clipped at 255 as PIL's ``convert`` would; CMYK and
    the rest go through PIL's conversion.

    Raises:
        TypeError: not a PIL image.
        ValueError: an empty image or one over ``MAX_PIXELS``.
    """
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL.Image.Image, got {type(image).__name__}")
    w, h = image.size
    if w < 1 or h < 1:
        raise ValueError(f"image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise ValueError(f"image is {w}x{h} = {w * h:,} pixels, over the limit of {max_pixels:,}")
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _scale_to_rgb(np.asarray(image, dtype=np.float64))
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, background)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def _scale_to_rgb(values: np.ndarray) -> Image.Image:
    """A high-bit-depth grayscale array stretched to 0..255 by its own min and max."""
    lo, hi = float(values.min()), float(values.max())
    scaled = np.zeros_like(values) if hi == lo else (values - lo) / (hi - lo) * 255.0
    gray = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([gray] * 3, axis=-1), mode="RGB")


def open_image(source: str | Path | bytes, *, name: str = "image", max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Opens an image file or encoded bytes safely: upright (EXIF orientation), 8-bit RGB, fully decoded.

    The pixel count is checked from the header before decoding, so a decompression bomb is refused without
    allocating it.

    Raises:
        ValueError: empty, not an image, truncated or corrupt, or over ``max_pixels`` (the message names ``name``).
        FileNotFoundError: a path that does not exist.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ValueError(f"{name} is empty (0 bytes)")
        fp, where = io.BytesIO(bytes(source)), f"{name}"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{name}: file not found: {path}")
        if path.stat().st_size == 0:
            raise ValueError(f"{name} is empty (0 bytes): {path}")
        fp, where = path, f"{name} ({path})"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as image:
                w, h = image.size
                if w * h > max_pixels:
                    raise ValueError(f"{where} is {w}x{h} = {w * h:,} pixels, over the limit of {max_pixels:,}")
                image.load()
                return to_rgb(ImageOps.exif_transpose(image), max_pixels=max_pixels)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ValueError(f"{where} is too large to decode safely: {e}") from None
    except Image.UnidentifiedImageError:
        raise ValueError(f"{where} is not an image PIL can read (PNG, JPEG, WebP, TIFF, BMP, GIF, ...)") from None
    except (OSError, SyntaxError) as e:  # truncated or corrupt data
        raise ValueError(f"{where} is truncated or corrupt: {e}") from None
