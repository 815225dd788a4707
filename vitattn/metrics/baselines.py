"""Maps that know nothing of the model, so every score has chance beside it.

- ``random``: uniform noise on the patch grid, scored over ``n_seeds`` seeds and averaged.
- ``center``: an isotropic Gaussian at the image centre (sigma a fraction of the image side, in normalized
  coordinates, so it is elliptical in pixels on a non-square image), the photographer's centre bias.
- ``saliency``: spectral residual saliency (Hou & Zhang, "Saliency Detection: A Spectral Residual Approach",
  CVPR 2007) of the image pixels: what a low-level prior finds conspicuous, with no learning at all.
- ``sobel``: the Sobel gradient magnitude of the image (the seed study's edge baseline): does a map just follow
  edges? The grayscale image (BT.601 luma, as PIL's ``convert("L")``) is area-resized to ``224 x 224`` (the whole
  image), filtered with the 3x3 Sobel kernels (mirror padding, as ``np.pad(mode="reflect")``), and the magnitude
  ``sqrt(gx^2 + gy^2)`` is divided by its maximum.
- ``saliency_prior``: the seed study's generic saliency prior, a centred Gaussian with ``sigma = R / 3`` (a third
  of the image side) times a ramp ``min(x, 1 - x, y, 1 - y) / 0.5`` that falls linearly to 0 at the borders, in
  normalized coordinates, divided by its maximum.

Baseline maps live on the same patch grid as the model maps they are compared with (``grid``), since the
coarseness of a map alone changes its IoU.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from vitattn.metrics.raster import area_resize, pixel_centers
from vitattn.metrics.scores import METRIC_NAMES, BoxList, score_batch

CENTER_SIGMA = 0.25  # std of the centre prior, as a fraction of the image width / height
SALIENCY_SIZE = 64  # Hou & Zhang downscale the image to 64 px before the FFT
SALIENCY_BLUR = 2.5  # std (px of the 64 px image) of the final Gaussian blur, as in the authors' code
DEFAULT_GRID = (14, 14)  # ViT-B/16 at 224 px
SOBEL_SIZE = 224  # the seed study resizes the image to 224 px before the Sobel filter
PRIOR_SIGMA = 1.0 / 3.0  # std of the saliency prior's Gaussian, a fraction of the image side (R / 3 on an R grid)
BASELINE_NAMES = ("random", "center", "saliency", "sobel", "saliency_prior")  # saliency, sobel need the image


def _check_grid(grid: tuple[int, int]) -> tuple[int, int]:
    if len(grid) != 2 or not all(isinstance(g, int | np.integer) and not isinstance(g, bool) and g > 0 for g in grid):
        raise ValueError(f"grid must be two positive integers (gh, gw), got {grid!r}")
    return int(grid[0]), int(grid[1])


def random_map(grid: tuple[int, int], seed: int) -> np.ndarray:
    """Uniform noise in [0, 1) on the grid: ``[gh, gw]`` float32, deterministic given ``seed``."""
    return np.random.default_rng(seed).random(_check_grid(grid), dtype=np.float32)


def center_map(grid: tuple[int, int], sigma: float = CENTER_SIGMA) -> np.ndarray:
    """``exp(-((x - 0.5)^2 + (y - 0.5)^2) / (2 sigma^2))`` at the cell centres: ``[gh, gw]`` float32."""
    gh, gw = _check_grid(grid)
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    y, x = pixel_centers(gh)[:, None], pixel_centers(gw)[None, :]  # [gh, 1], [1, gw]
    return np.exp(-((x - 0.5) ** 2 + (y - 0.5) ** 2) / (2.0 * sigma**2)).astype(np.float32)  # [gh, gw]


def _grayscale(image: np.ndarray) -> np.ndarray:
    """``[H, W]`` float64 luma (ITU-R BT.601) of an RGB ``[H, W, 3]`` image."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"image must be RGB [H, W, 3], got shape {img.shape}")
    return img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # [H, W]


def spectral_residual(image: np.ndarray, size: int = SALIENCY_SIZE) -> np.ndarray:
    """Spectral residual saliency (Hou & Zhang, CVPR 2007) of an RGB image, on a ``size x size`` grid.

    The grayscale image is area-averaged to ``size x size`` (the whole image, like every map here). Then, as in
    the paper: ``L = log |F|``, residual ``R = L - h_3 * L`` (3x3 mean filter), saliency
    ``|F^-1[exp(R + i phase)]|^2``, blurred with a Gaussian (std 2.5 px, the authors' code).

    Args:
        image: ``[H, W, 3]`` RGB array (uint8 or float).
        size: side of the working grid.

    Returns:
        ``[size, size]`` float32 map, scaled to [0, 1] (all zeros for a flat image). Spectral amplitudes are
        floored at 1e-9 of the largest, so synthetic images with exact spectral zeros stay finite.
    """
    gray = area_resize(_grayscale(image), (size, size))  # [s, s]
    if np.ptp(gray) <= 1e-9 * max(np.abs(gray).max(), 1.0):
        return np.zeros((size, size), dtype=np.float32)  # a flat image has nothing salient
    spectrum = np.fft.fft2(gray)  # [s, s] complex
    amplitude = np.abs(spectrum)  # [s, s]
    log_amplitude = np.log(np.maximum(amplitude, 1e-9 * amplitude.max()))  # [s, s]; floor: exact zeros stay finite
    residual = log_amplitude - ndimage.uniform_filter(log_amplitude, size=3, mode="nearest")  # [s, s]
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2  # [s, s]
    saliency = ndimage.gaussian_filter(saliency, sigma=SALIENCY_BLUR, mode="nearest", truncate=2.0)  # [s, s]
    return ((saliency - saliency.min()) / np.ptp(saliency)).astype(np.float32)


def saliency_prior(grid: tuple[int, int], sigma: float = PRIOR_SIGMA) -> np.ndarray:
    """Centred Gaussian (``sigma`` a fraction of the side) times ``min(x, 1 - x, y, 1 - y) / 0.5``, peak 1.

    Evaluated at the cell centres in normalized coordinates, like ``center_map``: ``[gh, gw]`` float32.
    """
    gh, gw = _check_grid(grid)
    y, x = pixel_centers(gh)[:, None], pixel_centers(gw)[None, :]  # [gh, 1], [1, gw]
    ramp = np.minimum(np.minimum(y, 1.0 - y), np.minimum(x, 1.0 - x)) / 0.5  # [gh, gw] 0 at the border, 1 at centre
    prior = center_map((gh, gw), sigma).astype(np.float64) * ramp  # [gh, gw]
    return (prior / prior.max()).astype(np.float32)


def sobel_map(image: np.ndarray, size: int = SOBEL_SIZE) -> np.ndarray:
    """Sobel gradient magnitude of an RGB image on a ``size x size`` grid, divided by its maximum.

    Args:
        image: ``[H, W, 3]`` RGB array (uint8 or float).
        size: side of the working grid (the whole image is area-resized to it).

    Returns:
        ``[size, size]`` float32 map in [0, 1] (all zeros for a flat image).
    """
    gray = area_resize(_grayscale(image), (size, size))  # [s, s]
    gx = ndimage.sobel(gray, axis=1, mode="mirror")  # [s, s] d/dx, smoothed along y
    gy = ndimage.sobel(gray, axis=0, mode="mirror")  # [s, s] d/dy, smoothed along x
    magnitude = np.hypot(gx, gy)  # [s, s]
    peak = magnitude.max()
    if peak <= 1e-12 * max(np.abs(gray).max(), 1.0):
        return np.zeros((size, size), dtype=np.float32)  # a flat image has no edges
    return (magnitude / peak).astype(np.float32)


def baseline_maps(grid: tuple[int, int], image: np.ndarray | None = None, *, seed: int = 0) -> dict[str, np.ndarray]:
    """The baseline maps on a patch grid: ``random`` (one seed), ``center``, ``saliency_prior`` and, given an
    image, ``saliency`` (spectral residual) and ``sobel``.

    Args:
        grid: ``(gh, gw)`` of the model maps these are compared with.
        image: ``[H, W, 3]`` RGB image (uint8), needed for the saliency prior.
        seed: seed of the random map.

    Returns:
        name -> ``[gh, gw]`` float32 map.
    """
    grid = _check_grid(grid)
    maps = {"random": random_map(grid, seed), "center": center_map(grid)}
    if image is not None:
        maps["saliency"] = area_resize(spectral_residual(image), grid).astype(np.float32)
        maps["sobel"] = area_resize(sobel_map(image), grid).astype(np.float32)
    maps["saliency_prior"] = saliency_prior(grid)
    return maps


def baseline_metrics(
    boxes: BoxList,
    image: np.ndarray | None = None,
    resolution: int = 224,
    n_seeds: int = 20,
    *,
    grid: tuple[int, int] = DEFAULT_GRID,
    scorer: Callable | None = None,
) -> dict[str, dict[str, float]]:
    """Every metric (``METRIC_NAMES``, the continuous ones included) of each baseline map against the boxes.

    ``random`` is the mean over seeds ``0 .. n_seeds - 1``; ``saliency`` and ``sobel`` need ``image``. ``scorer``
    (``score_batch``'s signature; default ``score_batch``) scores the stacks, e.g. the batched torch scorer.

    Returns:
        baseline name -> metric name -> value.
    """
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, int | np.integer) or n_seeds < 1:
        raise ValueError(f"n_seeds must be a positive integer, got {n_seeds!r}")
    grid = _check_grid(grid)
    noise = np.stack([random_map(grid, s) for s in range(n_seeds)])  # [S, gh, gw]
    score = scorer or score_batch
    scores = score(noise, boxes, resolution).metrics
    out = {"random": {name: float(scores[name].mean()) for name in METRIC_NAMES}}
    fixed = {k: v for k, v in baseline_maps(grid, image).items() if k != "random"}
    scores = score(np.stack(list(fixed.values())), boxes, resolution).metrics  # each [len(fixed)]
    out.update({k: {name: float(scores[name][j]) for name in METRIC_NAMES} for j, k in enumerate(fixed)})
    return out
