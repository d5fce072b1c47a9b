"""Images: sniffed by content, capped, re-encoded to fit, cached once, private hosts refused."""

from __future__ import annotations

import io
import logging
import random

import pytest
from PIL import Image as PILImage

from distributor import images
from distributor.images import ImageError
from tests.fakes.server import FakeServer, Reply
from tests.unit.channels.vi_articles import channel_from


def picture(fmt: str = "PNG", size: tuple[int, int] = (64, 48), mode: str = "RGB", noise: bool = False) -> bytes:
    canvas = PILImage.new(mode, size, (200, 30, 30, 128)[: len(mode)] if mode != "L" else 128)
    if noise:  # incompressible content, so size really depends on pixels and quality
        rng = random.Random(7)
        canvas = PILImage.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
    buffer = io.BytesIO()
    canvas.save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def shared_server():
    with FakeServer() as fake:  # one server per module: stopping one costs half a second
        yield fake


@pytest.fixture
def server(shared_server):
    shared_server.routes.clear()
    shared_server.requests.clear()
    return shared_server


def serve(server: FakeServer, path: str, body: bytes, content_type: str = "image/png") -> str:
    server.add("GET", path, lambda request: Reply(200, body, {"Content-Type": content_type}))
    return server.url + path


def test_type_is_sniffed_from_the_bytes_not_the_header(server, tmp_path):
    jpeg_as_text = serve(server, "/photo", picture("JPEG"), "text/plain")
    html_as_png = serve(server, "/fake.png", b"<html>not an image</html>", "image/png")

    image = images.fetch(jpeg_as_text, data_dir=tmp_path, allow_private=True)
    assert (image.format, image.mime, image.width, image.height) == ("JPEG", "image/jpeg", 64, 48)
    with pytest.raises(ImageError, match="not an image"):
        images.fetch(html_as_png, data_dir=tmp_path, allow_private=True)


def test_a_camera_jpeg_with_extra_frames_is_taken_as_the_jpeg_it_is(server, tmp_path):
    # Phones and cameras write multi-picture JPEGs (MPF, which Pillow calls "MPO"): a JPEG whose
    # first frame every decoder shows, with more frames appended. Platforms take it as image/jpeg.
    first, second = PILImage.new("RGB", (64, 48), "red"), PILImage.new("RGB", (64, 48), "blue")
    buffer = io.BytesIO()
    first.save(buffer, "MPO", save_all=True, append_images=[second])
    url = serve(server, "/camera.jpg", buffer.getvalue(), "image/jpeg")

    image = images.fetch(url, data_dir=tmp_path, allow_private=True)
    assert (image.format, image.mime, image.width, image.height) == ("JPEG", "image/jpeg", 64, 48)
    assert images.prepare(image, max_bytes=1_000_000, formats=("JPEG", "PNG")) is image


def test_unsupported_image_type_is_refused(server, tmp_path):
    url = serve(server, "/old.bmp", picture("BMP"), "image/bmp")
    with pytest.raises(ImageError, match="unsupported image type BMP"):
        images.fetch(url, data_dir=tmp_path, allow_private=True)


def test_oversize_download_is_refused(server, tmp_path):
    body = picture("PNG", (300, 300), noise=True)
    url = serve(server, "/big.png", body)
    with pytest.raises(ImageError, match="cap"):
        images.fetch(url, data_dir=tmp_path, allow_private=True, max_bytes=len(body) - 1)
    assert images.fetch(url, data_dir=tmp_path, allow_private=True, max_bytes=len(body)).size == len(body)


def test_decompression_bombs_are_refused_before_decoding(server, tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_DECODE_PIXELS", 1000)
    url = serve(server, "/wide.png", picture("PNG", (100, 11)))
    with pytest.raises(ImageError, match="over 1000 pixels"):
        images.fetch(url, data_dir=tmp_path, allow_private=True)


def test_http_errors_and_redirects(server, tmp_path):
    server.add("GET", "/gone.png", lambda request: Reply(404, "missing"))
    server.add("GET", "/moved.png", lambda request: Reply(302, b"", {"Location": "/real.png"}))
    serve(server, "/real.png", picture())
    with pytest.raises(ImageError, match="HTTP 404"):
        images.fetch(server.url + "/gone.png", data_dir=tmp_path, allow_private=True)
    assert images.fetch(server.url + "/moved.png", data_dir=tmp_path, allow_private=True).format == "PNG"


def test_an_image_is_downloaded_once_and_cached_on_disk(server, tmp_path):
    url = serve(server, "/once.png", picture())
    first = images.fetch(url, data_dir=tmp_path, allow_private=True)
    second = images.fetch(url, data_dir=tmp_path, allow_private=True)
    assert first == second
    assert [r.path for r in server.requests] == ["/once.png"]
    assert images.cache_path(tmp_path, url).read_bytes() == first.data
    assert images.cache_path(tmp_path, url).parent == tmp_path / "images"


def test_loopback_is_refused_by_default_even_from_the_cache(server, tmp_path):
    url = serve(server, "/internal.png", picture())
    with pytest.raises(ImageError, match=r"non-public address 127\.0\.0\.1.*allow_private_images"):
        images.fetch(url, data_dir=tmp_path)
    assert server.requests == []  # refused before any connection
    images.fetch(url, data_dir=tmp_path, allow_private=True)  # now cached
    with pytest.raises(ImageError, match="non-public"):
        images.fetch(url, data_dir=tmp_path)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/a.png",
        "http://192.168.1.1/a.png",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/a.png",
        "http://[::ffff:127.0.0.1]/a.png",
        "http://localhost/a.png",
        "http://100.64.0.1/a.png",
        "http://0.0.0.0/a.png",
    ],
)
def test_private_and_special_addresses_are_refused(url):
    with pytest.raises(ImageError, match="non-public"):
        images.check_url(url)


def test_public_addresses_and_other_schemes():
    images.check_url("http://93.184.216.34/a.png")  # a global address literal: no DNS needed
    with pytest.raises(ImageError, match="not an http"):
        images.check_url("file:///etc/passwd")
    with pytest.raises(ImageError, match="not an http"):
        images.check_url("ftp://93.184.216.34/a.png")


def test_redirect_to_a_private_host_is_refused(server, tmp_path, monkeypatch):
    """Each hop is checked: a public page must not bounce the fetch onto the internal network."""
    server.add("GET", "/hop.png", lambda request: Reply(302, b"", {"Location": "http://10.0.0.5/x.png"}))
    allowed = {server.url + "/hop.png"}
    real_check = images.check_url

    def check(url, *, allow_private=False):
        real_check(url, allow_private=allow_private or url in allowed)

    monkeypatch.setattr(images, "check_url", check)
    with pytest.raises(ImageError, match=r"10\.0\.0\.5"):
        images.fetch(server.url + "/hop.png", data_dir=tmp_path)


def test_prepare_keeps_an_image_that_already_fits():
    image = images.inspect(picture("PNG"))
    assert images.prepare(image, max_bytes=1_000_000) is image


def test_prepare_reencodes_to_fit_bytes_and_pixels():
    big = images.inspect(picture("PNG", (1200, 900), noise=True))
    assert big.size > 1_000_000
    small = images.prepare(big, max_bytes=150_000, max_side=800)
    assert small.format == "JPEG" and small.size <= 150_000
    assert max(small.width, small.height) <= 800
    assert small.width / small.height == pytest.approx(1200 / 900, rel=0.01)
    reopened = PILImage.open(io.BytesIO(small.data))
    assert reopened.format == "JPEG" and reopened.size == (small.width, small.height)

    by_pixels = images.prepare(big, max_bytes=10_000_000, max_pixels=250_000)
    assert by_pixels.width * by_pixels.height <= 250_000


def test_prepare_converts_unaccepted_formats_and_flattens_alpha_on_white():
    transparent = images.inspect(picture("PNG", (40, 40), mode="RGBA"))
    out = images.prepare(transparent, max_bytes=1_000_000, formats=("JPEG",))
    assert out.format == "JPEG"
    pixel = PILImage.open(io.BytesIO(out.data)).getpixel((20, 20))
    assert isinstance(pixel, tuple)
    r, g, b = pixel
    # 50% red over white, not over black
    assert r > 200 and 110 < g < 160 and 110 < b < 160


def test_prepare_gives_up_when_nothing_fits():
    image = images.inspect(picture("PNG", (400, 400), noise=True))
    with pytest.raises(ImageError, match="cannot fit"):
        images.prepare(image, max_bytes=200)
    with pytest.raises(ImageError, match="JPEG is not accepted"):
        images.prepare(image, max_bytes=200, formats=("PNG",))


def test_usable_returns_none_and_logs_the_reason(server, tmp_path, caplog):
    channel = channel_from({"name": "m", "type": "outbox", "allow_private_images": True}, tmp_path)
    url = serve(server, "/x.png", b"GIF89a but broken")
    with caplog.at_level(logging.WARNING, logger="distributor.images"):
        assert images.usable(url, channel, max_bytes=10**6) is None
    assert "m: posting without the image" in caplog.text and "not an image" in caplog.text
    assert images.usable(None, channel, max_bytes=1) is None
    good = serve(server, "/good.png", picture())
    converted = images.usable(good, channel, max_bytes=10**6, formats=("JPEG",))
    assert converted is not None and converted.format == "JPEG"
