"""Article images for channels that upload them (Mastodon media, Bluesky card thumbnails).

An image is fetched once per URL and kept under `<data_dir>/images/` so several channels posting
the same article download it once. Its type is decided from its bytes (Pillow), not from the
server's Content-Type, and it is re-encoded only when a platform's limits demand it. Image URLs
come from scraped pages, so by default a host that resolves to a private, loopback or link-local
address is refused (`netguard.is_public` decides, for sources and images alike): this service
must not become a way to publish what sits on the internal network. Callers treat every
`ImageError` as "post without the image" (see `usable`).
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from distributor import http, netguard
from distributor.errors import ChannelError, DistributorError

if TYPE_CHECKING:
    from distributor.channels.base import Channel

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF")
MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
MAX_FETCH_BYTES = 20_000_000
MAX_DECODE_PIXELS = 50_000_000  # refuse decompression bombs before decoding
MAX_REDIRECTS = 5
FETCH_TIMEOUT = (5.0, 20.0)
_QUALITIES = (85, 75, 65, 55, 45)
_SHRINK = 0.75
_MIN_SIDE = 16


class ImageError(DistributorError):
    """The image cannot be used (unreachable, not an image, too big, private host...)."""


@dataclass(frozen=True)
class Image:
    data: bytes
    format: str  # Pillow's name: JPEG, PNG, WEBP, GIF
    width: int
    height: int

    @property
    def mime(self) -> str:
        return MIME[self.format]

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def extension(self) -> str:
        return "jpg" if self.format == "JPEG" else self.format.lower()


# --- fetching ------------------------------------------------------------------------------------


def cache_path(data_dir: Path, url: str) -> Path:
    return data_dir / "images" / hashlib.sha256(url.encode("utf-8")).hexdigest()


def fetch(url: str, *, data_dir: Path, allow_private: bool = False, max_bytes: int = MAX_FETCH_BYTES) -> Image:
    """The image at `url`, from the disk cache or downloaded (and then cached).

    The host check runs even on a cache hit: bytes fetched for a channel that allows private
    hosts must not reach a channel that does not.
    """
    check_url(url, allow_private=allow_private)
    path = cache_path(data_dir, url)
    if path.is_file():
        data = path.read_bytes()
        if len(data) > max_bytes:
            raise ImageError(f"image is {len(data)} bytes, over the {max_bytes}-byte cap")
        return inspect(data)
    data = _download(url, allow_private=allow_private, max_bytes=max_bytes)
    image = inspect(data)
    _store(path, data)
    return image


def check_url(url: str, *, allow_private: bool = False) -> None:
    """Refuse non-HTTP URLs and, unless allowed, hosts with any non-global address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImageError(f"not an http(s) image URL: {url[:200]}")
    if allow_private:
        return
    host = parts.hostname
    try:
        netguard.check(host, parts.port or (443 if parts.scheme == "https" else 80))
    except netguard.AddressRefused as refused:
        raise ImageError(
            f"image host {host} resolves to the non-public address {refused.address}; "
            "set allow_private_images = true on the channel to allow it"
        ) from None
    except (OSError, ValueError, UnicodeError) as exc:
        raise ImageError(f"cannot resolve image host {host}: {exc}") from exc


def _download(url: str, *, allow_private: bool, max_bytes: int) -> bytes:
    """GET with redirects followed by hand, so every hop passes `check_url`."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        check_url(current, allow_private=allow_private)
        try:
            response = http.request("GET", current, stream=True, allow_redirects=False, timeout=FETCH_TIMEOUT)
        except ChannelError as exc:
            raise ImageError(f"image download failed: {exc.message}") from exc
        with response:
            if response.is_redirect and response.headers.get("Location"):
                current = urljoin(current, response.headers["Location"])
                continue
            if response.status_code != 200:
                raise ImageError(f"image download answered HTTP {response.status_code}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise ImageError(f"image is {declared} bytes, over the {max_bytes}-byte cap")
            return _read_capped(response.iter_content(65536), max_bytes)
    raise ImageError(f"image download gave up after {MAX_REDIRECTS} redirects")


def _read_capped(chunks: Iterable[bytes], max_bytes: int) -> bytes:
    buffer = bytearray()
    try:
        for chunk in chunks:
            buffer.extend(chunk)
            if len(buffer) > max_bytes:
                raise ImageError(f"image is over the {max_bytes}-byte cap")
    except OSError as exc:  # requests' stream errors are OSErrors too
        raise ImageError(f"image download broke off: {type(exc).__name__}") from exc
    return bytes(buffer)


def _store(path: Path, data: bytes) -> None:
    """Atomic write: a concurrent reader sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    try:
        with os.fdopen(handle, "wb") as output:
            output.write(data)
        os.replace(temporary, path)
    except OSError:
        Path(temporary).unlink(missing_ok=True)
        log.warning("could not cache image in %s", path.parent)


# --- checking and fitting ------------------------------------------------------------------------


def _open(data: bytes) -> PILImage.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            return PILImage.open(io.BytesIO(data))
    except (UnidentifiedImageError, PILImage.DecompressionBombWarning) as exc:
        raise ImageError("the file is not an image Pillow can read") from exc
    except (PILImage.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"the image is unreadable: {exc}") from exc


def inspect(data: bytes) -> Image:
    """Sniff the type from the bytes and check the pixel count; raise ImageError otherwise."""
    picture = _open(data)
    with picture:
        kind = picture.format or "unknown"
        if kind == "MPO":  # a camera's multi-picture JPEG: a plain JPEG with more frames after it
            kind = "JPEG"
        if kind not in FORMATS:
            raise ImageError(f"unsupported image type {kind} (supported: {', '.join(FORMATS)})")
        width, height = picture.size
    if width * height > MAX_DECODE_PIXELS:
        raise ImageError(f"image is {width}x{height}, over {MAX_DECODE_PIXELS} pixels")
    return Image(data=data, format=kind, width=width, height=height)


def _fits(
    image: Image,
    max_bytes: int,
    max_pixels: int | None,
    max_side: int | None,
    formats: Sequence[str],
) -> bool:
    return (
        image.format in formats
        and image.size <= max_bytes
        and (max_pixels is None or image.width * image.height <= max_pixels)
        and (max_side is None or max(image.width, image.height) <= max_side)
    )


def prepare(
    image: Image,
    *,
    max_bytes: int,
    max_pixels: int | None = None,
    max_side: int | None = None,
    formats: Sequence[str] = FORMATS,
) -> Image:
    """`image` unchanged when the platform accepts it, else a JPEG re-encode stepping quality
    down, then size down, until it fits. Raises ImageError when nothing sensible fits."""
    if _fits(image, max_bytes, max_pixels, max_side, formats):
        return image
    if "JPEG" not in formats:
        raise ImageError(f"{image.format} image does not fit and JPEG is not accepted here")
    try:
        with _open(image.data) as picture:
            picture.load()
            flat = _flatten(ImageOps.exif_transpose(picture))
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"the image is unreadable: {exc}") from exc
    scale = _initial_scale(image.width, image.height, max_pixels, max_side)
    while min(image.width, image.height) * scale >= _MIN_SIDE:
        size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
        resized = flat if size == flat.size else flat.resize(size, PILImage.Resampling.LANCZOS)
        for quality in _QUALITIES:
            buffer = io.BytesIO()
            resized.save(buffer, "JPEG", quality=quality, optimize=True)
            if buffer.tell() <= max_bytes:
                return Image(data=buffer.getvalue(), format="JPEG", width=size[0], height=size[1])
        scale *= _SHRINK
    raise ImageError(f"cannot fit the image under {max_bytes} bytes")


def _initial_scale(width: int, height: int, max_pixels: int | None, max_side: int | None) -> float:
    scale = 1.0
    if max_pixels is not None and width * height > max_pixels:
        scale = min(scale, math.sqrt(max_pixels / (width * height)))
    if max_side is not None and max(width, height) > max_side:
        scale = min(scale, max_side / max(width, height))
    return scale


def _flatten(picture: PILImage.Image) -> PILImage.Image:
    """RGB for JPEG: transparency is composited on white (black would be the JPEG default)."""
    if picture.mode in ("RGBA", "LA") or (picture.mode == "P" and "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        background = PILImage.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return picture.convert("RGB")


# --- for channels --------------------------------------------------------------------------------


def usable(
    url: str | None,
    channel: Channel,
    *,
    max_bytes: int,
    max_pixels: int | None = None,
    max_side: int | None = None,
    formats: Sequence[str] = FORMATS,
) -> Image | None:
    """The post's image fitted to the platform, or None with the reason logged: a failing image
    never blocks a post, the channel falls back to text and link."""
    if not url:
        return None
    allow_private = channel.settings.allow_private_images
    try:
        image = fetch(url, data_dir=channel.data_dir, allow_private=allow_private)
        return prepare(image, max_bytes=max_bytes, max_pixels=max_pixels, max_side=max_side, formats=formats)
    except ImageError as exc:
        log.warning("%s: posting without the image %s: %s", channel.name, url[:200], exc)
        return None
