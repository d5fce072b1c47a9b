"""The embedded redis-server: a real server that starts, serves, persists, is reused and stops."""

from __future__ import annotations

from pathlib import Path

import redis

from distributor.redis import EmbeddedRedis


def test_starts_serves_persists_and_stops(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    url = server.start()
    client = redis.Redis.from_url(url)
    assert client.ping()
    client.set("distributor:test", "giữ lại")
    info = client.info("persistence")
    assert info["aof_enabled"] == 1
    assert Path(client.config_get("dir")["dir"]) == (tmp_path / "redis").resolve()

    second = EmbeddedRedis(tmp_path)  # another process on the same data dir
    assert second.start() == url and not second.owner
    second.stop()  # not the owner: leaves the server running
    assert client.ping()

    server.stop()
    try:
        client.ping()
        raise AssertionError("server still answering after stop")
    except redis.ConnectionError:
        pass
    assert not (tmp_path / "redis" / "redis.url").exists()

    again = EmbeddedRedis(tmp_path)  # data survives a restart (AOF)
    url = again.start()
    assert redis.Redis.from_url(url).get("distributor:test") == "giữ lại".encode()
    again.stop()
