"""Rendering one synthetic mammogram: a breast phantom with its vendor's look, from the
image's own seed, as display values in [0, 1] and as stored pixel values."""

from __future__ import annotations

import numpy as np

from .plan import VENDOR_LOOKS, ImageJob, VendorLook

# The strength of the vendors' looks (1: full), once a setting no study varied.
VENDOR_SIGNAL = 1.0


def smooth_field(coarse: np.ndarray, rows: int, cols: int, max_rows: int = 512) -> np.ndarray:
    """A coarse grid interpolated to rows x cols and blurred with sigma rows / 40.

    The field varies on the scale of rows / 40, so above ``max_rows`` it is built on a
    grid of at most max_rows rows and interpolated up, which changes nothing a reader
    can see at full size; small matrices (the default's) are built as always.
    """
    from scipy import ndimage  # here: importing the package (config reads its constants) needs no SciPy
    step = -(-rows // max_rows)
    if step <= 1:
        field = ndimage.zoom(coarse, (rows / coarse.shape[0], cols / coarse.shape[1]), order=1)[:rows, :cols]
        return ndimage.gaussian_filter(field, sigma=rows / 40)
    small = smooth_field(coarse, -(-rows // step), -(-cols // step), max_rows)
    zoomed = ndimage.zoom(small, (rows / small.shape[0], cols / small.shape[1]), order=1, grid_mode=True, mode="nearest")
    return zoomed[:rows, :cols]


# Rows per block of the float64 part of rendering: a block's temporaries stay small
# enough for the allocator to reuse, where whole full-size arrays (224 MB for FUJI's
# 5928x4728) were mapped and faulted in afresh for every step.
RENDER_BLOCK_ROWS = 256


def shown_fraction(job: ImageJob) -> float:
    """The dense fraction the image shows: its label's, moved per image by its vendor's ``fraction_spread``."""
    spread = VENDOR_LOOKS[job.manufacturer].fraction_spread
    if not spread:
        return job.dense_fraction
    # Its own stream, so the rendering's draws (and every other vendor's files) stay as they are.
    moved = job.dense_fraction + VENDOR_SIGNAL * spread * np.random.default_rng([job.seed, 2]).normal()
    return float(np.clip(moved, 0.01, 0.99))


def render_display(job: ImageJob) -> np.ndarray:
    """Render the phantom as a display image in [0, 1] (dense tissue bright), chest wall on one side.

    Steps that need the whole image (the tissue field, its spread and quantile, the blur)
    run on whole arrays; the pixel-wise rest runs in blocks of rows. Each pixel's value and
    the order of the random draws are those of the whole-array computation, so the
    result does not depend on the block size (tests/test_synthetic.py).
    """
    from scipy import ndimage, special
    rng = np.random.default_rng(job.seed)
    rows, cols = job.rows, job.columns
    # A column and a row that broadcast: the same values as full coordinate grids, at a
    # fraction of the memory and time on full-size matrices.
    yy = np.arange(rows, dtype=np.float32)[:, None]
    yy /= rows
    xx = np.arange(cols, dtype=np.float32)[None, :]
    xx /= cols
    mlo = job.view in ("MLO", "XCCL")
    cy = (0.47 if mlo else 0.5) + rng.normal(0, 0.02)
    ay = job.breast_size * (0.45 if mlo else 0.40)
    ax = job.breast_size * 0.78
    r2 = ((yy - cy) / ay) ** 2 + (xx / ax) ** 2
    breast = r2 < 1.0
    pectoral = np.zeros_like(breast)
    if mlo:
        pectoral = (xx / (0.26 * job.breast_size) + yy / 0.55) < 1.0
    tissue_region = breast & ~pectoral

    coarse = rng.normal(size=(14, 11)).astype(np.float32)
    field = smooth_field(coarse, rows, cols)
    field /= field[tissue_region].std() + 1e-6
    # Glandular tissue gathers behind the nipple and thins out towards the skin.
    towards_skin = np.clip(r2, 0, 1)
    np.sqrt(towards_skin, out=towards_skin)
    np.subtract(1.0, towards_skin, out=towards_skin)
    towards_skin *= 1.6
    field += towards_skin
    del towards_skin
    look = VENDOR_LOOKS[job.manufacturer]
    s = VENDOR_SIGNAL
    threshold = float(np.quantile(field[tissue_region], 1.0 - shown_fraction(job)))
    field -= threshold
    field /= 0.06
    dense = special.expit(field, out=field)

    # Vendors equalise breast thickness differently: how much the periphery darkens,
    # and whether its outer ring is enhanced, is part of each vendor's look.
    falloff = 0.38 + s * (look.edge_falloff - 0.38)
    fat = 0.30 + job.fat_shift
    exponent = 1.0 + s * (look.gamma - 1.0)
    heel = 1.0 + s * look.heel * (0.5 - yy)
    if look.stripes:
        stripes = s * look.stripes * np.sin(2 * np.pi * look.stripe_cycles * yy + rng.uniform(0, 2 * np.pi))
    image = np.empty((rows, cols), dtype=np.float64)
    for top in range(0, rows, RENDER_BLOCK_ROWS):
        block = slice(top, top + RENDER_BLOCK_ROWS)
        r2_block, breast_block = r2[block], breast[block]
        thickness = (1.0 - falloff) + falloff * np.sqrt(np.clip(1.0 - r2_block, 0.0, 1.0))
        thickness = thickness + s * look.rim * ((r2_block > 0.8) & breast_block)
        tissue = np.where(tissue_region[block], (fat + 0.48 * dense[block]) * thickness, 0.0)
        tissue = np.where(pectoral[block] & breast_block, 0.80 * thickness, tissue)
        tissue = np.clip(tissue, 0, 1) ** exponent
        tissue = tissue * heel[block]
        if look.stripes:
            tissue = tissue + stripes[block]
        image[block] = np.where(breast_block, tissue, 0.0)
    del dense, field
    if look.blur:
        image = ndimage.gaussian_filter(image, sigma=s * look.blur * rows)
    # Quantum noise over the whole image first, then the background's: the draws come in
    # this order, block after block.
    for top in range(0, rows, RENDER_BLOCK_ROWS):
        block = image[top : top + RENDER_BLOCK_ROWS]
        block += rng.normal(0, look.noise, size=block.shape)
    display = np.empty((rows, cols), dtype=np.float32)
    for top in range(0, rows, RENDER_BLOCK_ROWS):
        block = slice(top, top + RENDER_BLOCK_ROWS)
        background = np.abs(rng.normal(0, 0.004, size=image[block].shape))
        display[block] = np.where(breast[block], image[block], background)
    # A lead marker in a far corner, as on real films: the breast mask must drop it.
    mr, mc = max(2, rows // 25), max(3, cols // 12)
    display[rows // 20 : rows // 20 + mr, cols - 2 * mc : cols - mc] = 0.92
    np.clip(display, 0.0, 1.0, out=display)
    # Right breasts with the chest wall on the left edge, left breasts on the right.
    return display if job.laterality == "R" else display[:, ::-1].copy()


def add_hard_features(display: np.ndarray, seed: int) -> np.ndarray:
    """What makes a breast mask hard, added to a rendered display image (a new array).

    A text label (a bright plate with dark letters) in a corner away from the chest
    wall, a thin bright skin line two pixels wide, and the breast shifted up so dense
    tissue touches the image edge. Used to check that preprocessing a reduced image
    gives the cache of the full-resolution pipeline (``bench/full_size.py``, tests).
    """
    from scipy import ndimage
    rng = np.random.default_rng(seed)
    rows, cols = display.shape
    image = np.zeros_like(display)
    shift = rows // 8
    image[: rows - shift] = display[shift:]
    breast = image > 0.05
    chest_left = breast[:, : max(1, cols // 50)].sum() >= breast[:, -max(1, cols // 50) :].sum()
    # Dense tissue along the cut top edge.
    top = np.zeros_like(breast)
    top[: rows // 10] = True
    image = np.where(top & breast, np.maximum(image, 0.85 + rng.uniform(0, 0.05)), image)
    # Skin line: the outer two pixels of the breast.
    inner = ndimage.binary_erosion(breast, iterations=2)
    image = np.where(breast & ~inner, 0.7, image)
    # Label plate with letters, bottom corner on the side away from the chest wall.
    plate_rows, plate_cols = max(6, rows // 14), max(10, cols // 5)
    r0 = rows - plate_rows - rows // 30
    c0 = cols - plate_cols - cols // 30 if chest_left else cols // 30
    image[r0 : r0 + plate_rows, c0 : c0 + plate_cols] = 0.95
    letter = max(2, plate_cols // 12)
    for k in range(1, plate_cols // (2 * letter)):
        c = c0 + 2 * k * letter - letter // 2
        image[r0 + plate_rows // 4 : r0 + 3 * plate_rows // 4, c : c + max(1, letter // 2)] = 0.1
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def to_stored_pixels(display: np.ndarray, look: VendorLook, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """Map display values to stored values and a VOI window that maps them back."""
    maxv = 2**look.bits_stored - 1
    width = maxv * rng.uniform(0.80, 0.88)
    center = maxv * rng.uniform(0.48, 0.52)
    stored = center - 0.5 + (display - 0.5) * (width - 1)
    stored = np.clip(np.round(stored), 0, maxv).astype(np.uint16)
    if look.photometric == "MONOCHROME1":
        return (maxv - stored).astype(np.uint16), maxv - center + 1, width
    return stored, center, width
