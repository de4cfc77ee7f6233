"""Reading mammograms (DICOM or 16-bit PNG) and other images (grey or colour) into model-ready arrays.

The steps follow the study: window to the display range, invert MONOCHROME1 so
dense tissue is bright, keep the largest connected foreground component (drops
markers and labels), flip so the chest wall is on the left, resize keeping the
aspect ratio, pad, and scale to [0, 1].

A full-field mammogram has 16-25 times the rows of a 256x192 input, so everything
after the decoder runs on a reduced image: the stored integers are averaged over
k x k blocks (k chosen so the image stays about ``working_scale`` times the model
input) before windowing, masking and the final resize. JPEG 2000 files are decoded at
a lower resolution level directly (the codec's wavelet low-pass), which skips most of
the decoding work. ``working_scale: 0`` keeps the full-resolution pipeline.
"""

from __future__ import annotations

import io
import mmap
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ImageReadError

CACHE_DTYPE = np.uint16
CACHE_MAX = np.iinfo(CACHE_DTYPE).max


@dataclass(frozen=True)
class PreprocessSettings:
    height: int
    width: int
    mask_threshold: float = 0.05
    # Windowing, mask and flip run on an image about this many times the model input
    # (per side); 0: on the full-resolution image.
    working_scale: int = 4
    # Mammograms: keep the largest foreground component and put the chest wall on the
    # left. Other images (chest X-rays, skin, fundus) are resized whole.
    mammogram: bool = True
    # 1: grey (colour files read as their ITU-R 601 luminance); 3: RGB, for pictures
    # whose colour may carry a subgroup (skin, fundus). Mammograms are grey.
    channels: int = 1

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels is 1 (grey) or 3 (colour), got {self.channels}")
        if self.channels == 3 and self.mammogram:
            raise ValueError("mammograms are grey: channels 3 needs a source that is not a mammogram")


# JPEG 2000 transfer syntaxes (lossless, lossy, and the high-throughput ones).
JPEG2000_SYNTAXES = frozenset(
    {
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.4.201",
        "1.2.840.10008.1.2.4.202",
        "1.2.840.10008.1.2.4.203",
    }
)


def reduction_factor(shape: tuple[int, int], settings: PreprocessSettings | None) -> int:
    """The block size k that keeps a (rows, cols) image about working_scale x the model input."""
    if settings is None or settings.working_scale <= 0:
        return 1
    rows, cols = shape
    # Rounded, not floored: a 3062-row GEMS image at 256 rows reduces by 3 (3.99x), not 2.
    return max(1, int(min(rows / settings.height, cols / settings.width) / settings.working_scale + 0.5))


def box_reduce(pixels: np.ndarray, factor: int, keep_bits: int = 0) -> np.ndarray:
    """Mean over factor x factor blocks, as float32; the last rows and columns that fill no block are dropped.

    Integer pixels are summed exactly (uint32) in strided slices, which touches each
    full-resolution value once: about 10x cheaper than the float pipeline on all of them.
    ``keep_bits`` > 0 clears the bits above the lowest keep_bits of every integer first
    (a DICOM's unused high bits), in the same pass. Where the masked values of one
    column of a block fit 16 bits, four pixels are summed at once (:func:`_packed_box_sum`).
    """

    def low_bits(values: np.ndarray) -> np.ndarray:
        return values & np.uint16((1 << keep_bits) - 1) if 0 < keep_bits < 16 else values

    if factor <= 1:
        return low_bits(pixels).astype(np.float32)
    rows, cols = pixels.shape[0] // factor * factor, pixels.shape[1] // factor * factor
    if rows == 0 or cols == 0:
        raise ValueError(f"image of shape {pixels.shape} is smaller than one {factor}x{factor} block")
    packed = _packed_box_sum(pixels, factor, keep_bits)
    if packed is not None:
        summed = packed
    else:
        block = pixels[:rows, :cols]
        wide = np.uint32 if np.issubdtype(pixels.dtype, np.integer) and pixels.dtype.itemsize <= 2 else np.float64
        by_rows = low_bits(block[0::factor]).astype(wide)
        for offset in range(1, factor):
            by_rows += low_bits(block[offset::factor])
        summed = by_rows[:, 0::factor].copy()
        for offset in range(1, factor):
            summed += by_rows[:, offset::factor]
    return (summed / np.float32(factor * factor)).astype(np.float32)


# Output rows summed per band in _packed_box_sum: its two work buffers stay in the
# CPU's cache (2 x 64 x 4728 x 2 bytes for a Fujifilm row) instead of making six
# round trips through memory.
_BAND_ROWS = 64


def _packed_box_sum(pixels: np.ndarray, factor: int, keep_bits: int) -> np.ndarray | None:
    """Block sums (uint32) of masked uint16 pixels, four to a 64-bit word; None where that cannot be exact.

    Summing the ``factor`` rows of a block column by column needs 16 bits when
    factor x (2**keep_bits - 1) < 2**16 (a 12-bit image up to factor 16, 14-bit up to
    4): then the sums of four neighbouring columns never carry into each other, and
    one 64-bit add does the work of four. Only the columns' second stage is done
    value by value, on a band a ``factor``-th of the size. A width that is not a
    multiple of four packs two columns (or one) to a word instead.
    """
    if pixels.dtype != np.uint16 or not 0 < keep_bits < 16 or factor * ((1 << keep_bits) - 1) >= 1 << 16:
        return None
    if not pixels.flags.c_contiguous:
        return None
    out_rows, out_cols = pixels.shape[0] // factor, pixels.shape[1] // factor
    lanes_per_word = next(n for n in (4, 2, 1) if pixels.shape[1] % n == 0)
    word = {4: np.uint64, 2: np.uint32, 1: np.uint16}[lanes_per_word]
    words = pixels.view(word)
    lane_mask = word(((1 << keep_bits) - 1) * sum(1 << (16 * lane) for lane in range(lanes_per_word)))
    band = min(_BAND_ROWS, out_rows)
    column_sums = np.empty((band, words.shape[1]), word)
    scratch = np.empty_like(column_sums)
    block_sums = np.empty((out_rows, out_cols), np.uint32)
    for start in range(0, out_rows, band):
        n = min(band, out_rows - start)
        first = start * factor
        sums, spare = column_sums[:n], scratch[:n]
        np.bitwise_and(words[first : first + n * factor : factor], lane_mask, out=sums)
        for offset in range(1, factor):
            np.bitwise_and(words[first + offset : first + n * factor : factor], lane_mask, out=spare)
            sums += spare
        lanes = sums.view(np.uint16)
        target = block_sums[start : start + n]
        np.copyto(target, lanes[:, 0 : out_cols * factor : factor])
        for offset in range(1, factor):
            target += lanes[:, offset : out_cols * factor : factor]
    return block_sums


# ITU-R 601 luma, the weights a colour file is read as grey with (preprocess.channels 1).
LUMA = np.array([0.299, 0.587, 0.114])

# Uncompressed little-endian transfer syntaxes: 16-bit pixel data is used in place.
NATIVE_LITTLE_ENDIAN = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})


def _native_shape(dataset: object) -> tuple[int, int] | None:
    """(rows, columns) when the pixel data is one frame of native little-endian unsigned 16-bit values."""
    syntax = str(dataset.file_meta.TransferSyntaxUID)  # type: ignore[attr-defined]
    layout = (
        int(getattr(dataset, "BitsAllocated", 0)),
        int(getattr(dataset, "SamplesPerPixel", 1)),
        int(getattr(dataset, "PixelRepresentation", 0)),
        int(getattr(dataset, "NumberOfFrames", 1) or 1),
    )
    if syntax not in NATIVE_LITTLE_ENDIAN or layout != (16, 1, 0, 1):
        return None
    return int(dataset.Rows), int(dataset.Columns)  # type: ignore[attr-defined]


def _native_pixels(dataset: object) -> np.ndarray | None:
    """Unsigned 16-bit native pixel data as an array over the dataset's bytes (no copy), or None.

    pydicom's decoder copies the bytes and clears the unused high bits in another pass
    (a third of a full-size image's time); here :func:`box_reduce` clears them as it
    sums. Every other layout, and pixel data not as long as the header says, goes to
    pydicom's decoder.
    """
    shape = _native_shape(dataset)
    if shape is None or "PixelData" not in dataset:  # type: ignore[operator]
        return None
    data = dataset.PixelData  # type: ignore[attr-defined]
    if len(data) != shape[0] * shape[1] * 2:
        return None
    return np.frombuffer(data, dtype="<u2").reshape(shape)


_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010), little endian


def _mapped_native_pixels(dataset: object, handle: io.BufferedReader) -> np.ndarray | None:
    """The native pixel data of the file ``handle`` is positioned in, mapped read-only, or None.

    ``dataset`` is the header pydicom read up to the pixel data. Mapping the file's
    cached pages spares a full-size image a zeroed buffer and a copy. Anything unexpected (another
    element, a length that does not match, a truncated file) returns None, and the
    file is read and decoded by pydicom, which names what is wrong.
    """
    shape = _native_shape(dataset)
    if shape is None:
        return None
    start = handle.tell()
    element = handle.read(12)
    if len(element) < 12 or element[:4] != _PIXEL_DATA_TAG:
        return None
    if str(dataset.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2":  # type: ignore[attr-defined]
        length, offset = int.from_bytes(element[4:8], "little"), start + 8  # implicit VR: tag, length
    elif element[4:6] in (b"OW", b"OB"):
        length, offset = int.from_bytes(element[8:12], "little"), start + 12  # tag, VR, 2 reserved, length
    else:
        return None
    count = shape[0] * shape[1]
    if length != 2 * count or os.fstat(handle.fileno()).st_size < offset + length:
        return None
    mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    return np.frombuffer(mapped, dtype="<u2", count=count, offset=offset).reshape(shape)


def _codestream_header(frame: bytes) -> tuple[int, bool, int]:
    """(component precision, signed, wavelet decomposition levels) from a J2K main header."""
    start = frame.find(b"\xff\x4f\xff\x51")  # SOC then SIZ: a bare codestream, or one inside a JP2 box
    if start < 0:
        raise ValueError("no JPEG 2000 codestream")
    siz = start + 2
    ssiz = frame[siz + 40]
    precision, signed = (ssiz & 0x7F) + 1, bool(ssiz & 0x80)
    pos = siz
    while pos + 4 <= len(frame):
        marker = int.from_bytes(frame[pos : pos + 2], "big")
        if marker == 0xFF52:  # COD: Lcod, Scod, SGcod (4 bytes), then SPcod with the level count
            return precision, signed, frame[pos + 9]
        if marker == 0xFF90:  # SOT: the main header ended without a COD
            break
        pos += 2 + int.from_bytes(frame[pos + 2 : pos + 4], "big")
    raise ValueError("no COD segment in the JPEG 2000 main header")


def _decode_j2k_reduced(frame: bytes, levels: int) -> np.ndarray | None:
    """Stored values at 1/2**levels of the resolution (Pillow's OpenJPEG), or None when unsupported."""
    precision, signed, available = _codestream_header(frame)
    levels = min(levels, available)
    if signed or precision > 16 or levels < 1:
        return None
    with Image.open(io.BytesIO(frame)) as image:
        image.reduce = levels  # type: ignore[method-assign]
        image.load()
        mode = image.mode
        pixels = np.asarray(image)
    if mode == "L":
        return pixels
    if mode == "I;16":
        # Pillow scales every precision up to 16 bits.
        return pixels >> (16 - precision)
    return None


def stored_pixels(dataset: object, factor: int, native: np.ndarray | None = None) -> np.ndarray:
    """The stored pixel values, reduced by about ``factor`` per side (float32).

    ``native``: the dataset's native pixel data when the caller already has it (mapped
    from the file); otherwise it comes from ``dataset.PixelData`` or pydicom's decoder.
    """
    from scipy import ndimage  # here: training jobs import this module and never need SciPy
    if native is None:
        native = _native_pixels(dataset)
    if native is not None:
        return box_reduce(native, factor, keep_bits=int(dataset.BitsStored))  # type: ignore[attr-defined]
    syntax = str(dataset.file_meta.TransferSyntaxUID)  # type: ignore[attr-defined]
    if factor > 1 and syntax in JPEG2000_SYNTAXES and int(getattr(dataset, "NumberOfFrames", 1) or 1) == 1:
        from pydicom.encaps import generate_frames

        levels = factor.bit_length() - 1  # the largest power of two not above factor
        frame = next(generate_frames(dataset.PixelData, number_of_frames=1))  # type: ignore[attr-defined]
        try:
            decoded = _decode_j2k_reduced(frame, levels)
        except (OSError, ValueError, IndexError):
            decoded = None  # a codestream Pillow cannot read: pydicom's decoder says why, or reads it
        if decoded is not None:
            done = round(dataset.Rows / decoded.shape[0])  # type: ignore[attr-defined]
            # A low-pass sample of level r sits on full-resolution pixel 2**r * i, a block
            # mean on the block's centre, (2**r - 1) / 2 further: move the samples there.
            offset = (done - 1) / (2 * done)
            centred = ndimage.shift(decoded.astype(np.float32), (-offset, -offset), order=1, mode="nearest")
            return box_reduce(centred, max(1, factor // max(done, 1)))
    if syntax in JPEG2000_SYNTAXES:
        # GDCM, there for JPEG Lossless and JPEG-LS, would come first for JPEG 2000 too: keep the
        # OpenJPEG decoder the cache was built and tested with.
        dataset.pixel_array_options(decoding_plugin="pylibjpeg")  # type: ignore[attr-defined]
    pixels = dataset.pixel_array  # type: ignore[attr-defined]
    if pixels.ndim == 3 and _samples_per_pixel(dataset) == 3:
        # pydicom gives colour as (rows, cols, 3) RGB, YCbCr already converted.
        return np.stack([box_reduce(np.ascontiguousarray(pixels[..., c]), factor) for c in range(3)])
    return box_reduce(pixels, factor)


def _samples_per_pixel(dataset: object) -> int:
    return int(getattr(dataset, "SamplesPerPixel", 1) or 1)


def _first_value(value: object) -> float:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return float(value[0])  # type: ignore[index]
    return float(value)  # type: ignore[arg-type]


def read_dicom(path: str | Path, reduce_for: PreprocessSettings | None = None) -> np.ndarray:
    """Decode a DICOM mammogram into a float32 display image in [0, 1], dense tissue bright.

    With ``reduce_for``, the image comes back reduced to about its ``working_scale``
    (see :func:`reduction_factor`); without, at full resolution.
    """
    dataset, pixels = decode_dicom(path, reduce_for)
    return display_from_stored(dataset, pixels, path)


def decode_dicom(path: str | Path, reduce_for: PreprocessSettings | None = None) -> tuple[object, np.ndarray]:
    """The dataset and its stored pixel values (float32), reduced for ``reduce_for`` when given."""
    import pydicom

    path = Path(path)
    try:
        with open(path, "rb") as handle:
            dataset = pydicom.dcmread(handle, stop_before_pixels=True)
            native = _mapped_native_pixels(dataset, handle)
            if native is None:
                handle.seek(0)
                dataset = pydicom.dcmread(handle)
        factor = reduction_factor((int(dataset.Rows), int(dataset.Columns)), reduce_for)
        pixels = stored_pixels(dataset, factor, native)
    except FileNotFoundError as error:
        raise ImageReadError(f"{path}: file not found") from error
    except Exception as error:  # pydicom raises many types for damaged files
        raise ImageReadError(f"{path}: cannot decode DICOM pixel data ({type(error).__name__}: {error})") from error
    colour = _samples_per_pixel(dataset) == 3
    if pixels.ndim != (3 if colour else 2) or (colour and pixels.shape[0] != 3):
        kind = "colour" if colour else "grey-scale"
        raise ImageReadError(f"{path}: expected one {kind} frame, got pixel array of shape {pixels.shape}")
    return dataset, pixels


def colour_display(dataset: object, pixels: np.ndarray, channels: int, path: str | Path = "") -> np.ndarray:
    """A colour DICOM's stored (3, rows, cols) RGB values in [0, 1]: as they are with ``channels`` 3,
    their ITU-R 601 luminance (rows, cols) with 1. Colour photographs carry no VOI window."""
    photometric = str(getattr(dataset, "PhotometricInterpretation", "")).upper()
    if photometric != "RGB" and not photometric.startswith("YBR_"):
        raise ImageReadError(f"{path}: unsupported colour PhotometricInterpretation {photometric!r}")
    display = (pixels / np.float32(2 ** int(dataset.BitsStored) - 1)).clip(0, 1)  # type: ignore[attr-defined]
    if channels == 1:
        return np.einsum("c,chw->hw", LUMA, display).astype(np.float32)
    return display.astype(np.float32)


def display_from_stored(dataset: object, pixels: np.ndarray, path: str | Path = "") -> np.ndarray:
    """Rescale, window (the file's VOI LUT function) and invert MONOCHROME1: display values in [0, 1]."""
    slope = float(getattr(dataset, "RescaleSlope", 1) or 1)
    intercept = float(getattr(dataset, "RescaleIntercept", 0) or 0)
    pixels = pixels * slope + intercept
    center = getattr(dataset, "WindowCenter", None)
    width = getattr(dataset, "WindowWidth", None)
    if center is not None and width is not None and _first_value(width) > 0:
        c, w = _first_value(center), _first_value(width)
        if str(getattr(dataset, "VOILUTFunction", "LINEAR")).upper() == "SIGMOID":
            display = 1.0 / (1.0 + np.exp(-4.0 * (pixels - c) / w))
        else:
            display = (pixels - (c - 0.5)) / (w - 1) + 0.5
    else:
        low, high = float(pixels.min()), float(pixels.max())
        display = (pixels - low) / (high - low) if high > low else np.zeros_like(pixels)
    display = np.clip(display, 0.0, 1.0).astype(np.float32)
    photometric = str(getattr(dataset, "PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "MONOCHROME1":
        display = 1.0 - display
    elif photometric != "MONOCHROME2":
        raise ImageReadError(f"{path}: unsupported PhotometricInterpretation {photometric!r}")
    return display


def read_png16(path: str | Path, reduce_for: PreprocessSettings | None = None) -> np.ndarray:
    """Read one of the study's 16-bit PNGs (already windowed and inverted) into [0, 1]."""
    pixels = png_pixels(path)
    return png_display(pixels, reduce_for)


def png_pixels(path: str | Path) -> np.ndarray:
    """A grey-scale PNG's pixel values as stored (uint8 or uint16)."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            pixels = np.asarray(image)
    except FileNotFoundError as error:
        raise ImageReadError(f"{path}: file not found") from error
    except Exception as error:
        raise ImageReadError(f"{path}: cannot decode PNG ({type(error).__name__}: {error})") from error
    if pixels.ndim != 2:
        raise ImageReadError(f"{path}: expected a grey-scale PNG, got shape {pixels.shape}")
    return pixels


# Pillow modes of grey pictures, and of pictures whose values need a rule before use.
GREY_MODES = frozenset({"1", "L", "I", "I;16", "I;16B", "I;16L", "F"})
ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})


def picture_pixels(path: str | Path, channels: int = 1) -> np.ndarray:
    """A PNG, JPEG or TIFF as stored values (uint8 or uint16): (rows, cols) grey or (rows, cols, 3) RGB.

    ``channels`` 1: colour is converted to luminance (ITU-R 601 weights, Pillow's
    ``L``), 16-bit grey is kept as stored. ``channels`` 3: colour is kept; a grey file
    is refused, since in a colour dataset being grey would tell its images apart.
    Either way a CMYK file and one with transparent pixels are refused (their
    colours need a profile or a background the workflow cannot know); an alpha
    channel that is opaque everywhere is dropped, a palette is expanded.
    The rules, with the reasons a QC table shows, are in docs/datasets.md.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            return _picture_values(image, channels)
    except FileNotFoundError as error:
        raise ImageReadError(f"{path}: file not found") from error
    except ImageReadError as error:
        raise ImageReadError(f"{path}: {error}") from None
    except Exception as error:
        raise ImageReadError(f"{path}: cannot decode image ({type(error).__name__}: {error})") from error


def _picture_values(image: Image.Image, channels: int) -> np.ndarray:
    mode = image.mode
    if mode == "CMYK":
        raise ImageReadError(
            "CMYK colour: its RGB depends on a colour profile the workflow does not apply; convert the file to RGB"
        )
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = image.mode
    if mode in ALPHA_MODES:
        alpha = np.asarray(image.getchannel("A"))
        if int(alpha.min()) < 255:
            raise ImageReadError(
                f"transparent pixels (mode {mode}, {float((alpha < 255).mean()):.0%} of them): "
                "what lies behind them is unknown; flatten the image onto its background first"
            )
    if channels == 3:
        if mode in GREY_MODES or mode in ("LA", "La"):
            raise ImageReadError(
                f"a grey-scale image (mode {mode}) in a colour dataset (preprocess.channels: 3): "
                "being grey alone would tell it from the colour images; convert it to RGB or use channels 1"
            )
        return np.asarray(image.convert("RGB"))
    if mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(image).astype(np.uint16)
    if mode == "I":
        return np.clip(np.asarray(image), 0, 65535).astype(np.uint16)
    return np.asarray(image.convert("L"))


def png_display(pixels: np.ndarray, reduce_for: PreprocessSettings | None = None) -> np.ndarray:
    """Stored values in [0, 1], reduced for ``reduce_for``: (rows, cols) grey, or (3, rows, cols) from RGB."""
    scale = 65535.0 if pixels.dtype != np.uint8 else 255.0
    factor = reduction_factor(pixels.shape[:2], reduce_for)
    if pixels.ndim == 3:
        reduced = np.stack([box_reduce(np.ascontiguousarray(pixels[..., c]), factor) for c in range(pixels.shape[2])])
    else:
        reduced = box_reduce(pixels, factor)
    return (reduced / np.float32(scale)).clip(0, 1)


def load_for_cache(path: str | Path, image_format: str, settings: PreprocessSettings) -> tuple[np.ndarray, tuple[int, int]]:
    """The display image reduced for ``settings``, and the (rows, cols) of the file's full image.

    The display image is (rows, cols), or (3, rows, cols) with ``settings.channels`` 3.
    """
    if image_format == "dicom":
        dataset, pixels = decode_dicom(path, settings)
        full_shape = (int(dataset.Rows), int(dataset.Columns))  # type: ignore[attr-defined]
        if pixels.ndim == 3:
            return colour_display(dataset, pixels, settings.channels, path), full_shape
        if settings.channels == 3:
            raise ImageReadError(
                f"{path}: a grey-scale DICOM image in a colour dataset (preprocess.channels: 3): being grey "
                "alone would tell it from the colour images; convert it to RGB or use channels 1"
            )
        return display_from_stored(dataset, pixels, path), full_shape
    if image_format in ("png", "picture"):
        # png: EMBED's 16-bit grey PNGs, strictly; picture: any PNG, JPEG or TIFF (see picture_pixels).
        pixels = png_pixels(path) if image_format == "png" else picture_pixels(path, settings.channels)
        return png_display(pixels, settings), (int(pixels.shape[0]), int(pixels.shape[1]))
    if image_format == "auto":
        suffix = Path(path).suffix.lower()
        if suffix in (".png", ".jpg", ".jpeg", ".tif", ".tiff"):
            return load_for_cache(path, "picture", settings)
        return load_for_cache(path, "dicom", settings)
    raise ValueError(f"unknown image format {image_format!r}")


def breast_mask(image: np.ndarray, threshold: float) -> np.ndarray:
    """Largest connected component above background, holes filled."""
    from scipy import ndimage
    background = float(np.percentile(image, 1))
    foreground = image > background + threshold
    components, count = ndimage.label(foreground)
    if count == 0:
        return foreground
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    largest = components == int(np.argmax(sizes))
    return ndimage.binary_fill_holes(largest)


def resize_and_pad(
    image: np.ndarray, height: int, width: int, full_shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Aspect-preserving resize into height x width, placed against the left edge (where
    alignment puts the chest wall) and centred vertically; the rest is 0.

    ``full_shape``: the (rows, cols) the image had before a reader reduced it; the breast
    then gets the size the full-resolution image would give it (a reduced image's
    rounded shape could move that size by a pixel).
    """
    rows, cols = image.shape if full_shape is None else full_shape
    scale = min(height / rows, width / cols)
    new_rows = max(1, min(height, int(round(rows * scale))))
    new_cols = max(1, min(width, int(round(cols * scale))))
    resized = np.asarray(
        Image.fromarray(image.astype(np.float32), mode="F").resize(
            (new_cols, new_rows), resample=Image.Resampling.BILINEAR
        )
    )
    out = np.zeros((height, width), dtype=np.float32)
    top = (height - new_rows) // 2
    out[top : top + new_rows, :new_cols] = resized
    return out


def preprocess(
    image: np.ndarray, settings: PreprocessSettings, source: str = "", full_shape: tuple[int, int] | None = None
) -> tuple[np.ndarray, bool]:
    """Mask, align, resize and scale one display image; returns (cache array, was_flipped).

    ``full_shape``: the image's (rows, cols) before the reader reduced it, if it did.
    Images that are not mammograms (``settings.mammogram`` false) are resized whole,
    a colour image (3, rows, cols) plane by plane into a (3, height, width) array.
    """
    if not settings.mammogram:
        if float(image.max()) <= float(image.min()):
            raise ImageReadError(f"{source}: the image is blank (every pixel {float(image.min()):g})")
        if image.ndim == 3:  # (3, rows, cols): each colour plane resized alike
            resized = np.stack(
                [resize_and_pad(plane.astype(np.float32), settings.height, settings.width, full_shape) for plane in image]
            )
        else:
            resized = resize_and_pad(image.astype(np.float32), settings.height, settings.width, full_shape)
        return np.round(np.clip(resized, 0.0, 1.0) * CACHE_MAX).astype(CACHE_DTYPE), False
    mask = breast_mask(image, settings.mask_threshold)
    if mask.sum() < 0.01 * mask.size:
        raise ImageReadError(f"{source}: no breast found (foreground below 1% of the image)")
    masked = np.where(mask, image, 0.0).astype(np.float32)
    # The chest wall is the image edge the breast touches most; if it touches
    # neither (a small breast), its mass lies nearer the chest wall.
    edge = max(1, mask.shape[1] // 50)
    left, right = int(mask[:, :edge].sum()), int(mask[:, -edge:].sum())
    if left != right:
        flipped = right > left
    else:
        centre = float((mask.sum(axis=0) * np.arange(mask.shape[1])).sum() / mask.sum())
        flipped = centre > (mask.shape[1] - 1) / 2
    if flipped:
        masked = masked[:, ::-1]
    resized = resize_and_pad(masked, settings.height, settings.width, full_shape)
    cached = np.round(np.clip(resized, 0.0, 1.0) * CACHE_MAX).astype(CACHE_DTYPE)
    return cached, bool(flipped)


def cache_agreement(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """How closely two cache arrays of one image agree, in display units ([0, 1]).

    ``mean_abs``: mean absolute difference over the pixels either calls breast;
    ``p999_abs``: its 99.9th percentile; ``mask_iou``: overlap of the two breast masks
    (non-zero pixels). The fidelity check of the reduced pipeline against the
    full-resolution one.
    """
    a = reference.astype(np.float64) / CACHE_MAX
    b = candidate.astype(np.float64) / CACHE_MAX
    union = (a > 0) | (b > 0)
    if not union.any():
        return {"mean_abs": 0.0, "p999_abs": 0.0, "mask_iou": 1.0}
    difference = np.abs(a - b)[union]
    return {
        "mean_abs": float(difference.mean()),
        "p999_abs": float(np.percentile(difference, 99.9)),
        "mask_iou": float(((a > 0) & (b > 0)).sum() / union.sum()),
    }
