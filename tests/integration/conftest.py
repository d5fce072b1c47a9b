"""The broker the integration tests' workers use: each worker test runs twice, on the Redis store's
own server (`redis`) and on RabbitMQ (`amqp`, the machine's at 127.0.0.1:5672 or TEST_AMQP_URL).

Every amqp test gets a virtual host of its own, made with `rabbitmqctl` and deleted afterwards, so
that tests running side by side never take each other's tasks (queue and exchange names are the
product's own, unchanged). Without a reachable RabbitMQ, or without `rabbitmqctl` to make the
virtual host, the amqp variant is skipped and says why."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _rabbitmqctl(*args: str) -> subprocess.CompletedProcess[str]:
    command = [shutil.which("rabbitmqctl") or "rabbitmqctl", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.fixture(params=["redis", "amqp"])
def broker_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """`[worker] broker_url` for this test: "" (the Redis store's server) or a fresh RabbitMQ vhost."""
    if request.param == "redis":
        yield ""
        return
    parts = urlsplit(AMQP_URL)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5672
    if not _answers(host, port):
        pytest.skip(f"no RabbitMQ answers at {host}:{port} (set TEST_AMQP_URL to run the amqp variant)")
    if not shutil.which("rabbitmqctl"):
        pytest.skip("rabbitmqctl is not installed: the amqp variant needs it to give each test its own vhost")
    vhost = f"distributor-test-{uuid.uuid4().hex[:10]}"
    made = _rabbitmqctl("add_vhost", vhost)
    if made.returncode != 0:
        pytest.skip(f"rabbitmqctl add_vhost failed ({made.stderr.strip() or made.stdout.strip()})")
    try:
        granted = _rabbitmqctl("set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*")
        assert granted.returncode == 0, granted.stderr
        yield urlunsplit((parts.scheme, parts.netloc, "/" + vhost, "", ""))
        queues = _rabbitmqctl("list_queues", "-p", vhost, "--quiet", "--no-table-headers", "name").stdout.split()
        assert "distributor" in queues, f"the workers never used RabbitMQ (queues in {vhost}: {queues})"
    finally:
        _rabbitmqctl("delete_vhost", vhost)
