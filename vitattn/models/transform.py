"""The model input transform: RGB, resized to the square input without cropping, normalized.

No crop means a map covers the whole image, so a map cell ``(r, c)`` of a ``gh x gw`` grid covers the normalized
rectangle ``[c / gw, (c + 1) / gw) x [r / gh, (r + 1) / gh)`` of the original image, whatever its aspect ratio, and
lines up with normalized boxes exactly.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..images import to_rgb


class Transform:
    """PIL image -> normalized float tensor ``[3, size, size]``: RGB, resize (no crop), scale, normalize."""

    def __init__(self, size: int, mean: tuple[float, ...], std: tuple[float, ...], interpolation: str = "bicubic"):
        self.size = size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}.get(
            interpolation, Image.BICUBIC
        )

    def __call__(self, image: Image.Image) -> torch.Tensor:
        rgb = to_rgb(image).resize((self.size, self.size), self.resample)
        x = torch.from_numpy(np.asarray(rgb, dtype=np.float32).copy()).permute(2, 0, 1) / 255.0  # (3, S, S)
        return (x - self.mean) / self.std

    def __repr__(self) -> str:
        return f"Transform(size={self.size}, mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"
