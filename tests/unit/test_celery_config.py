"""What Celery is told for each broker: on RabbitMQ no Redis-only transport option (key prefix,
visibility timeout) reaches the broker, results stay in the Redis store, late acks hold; on a
Sentinel URL the broker, the results and RedBeat all ask the sentinels for the master."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.helpers import REPO, config_file

SHOW = """
import json
from worker.celery_app import app
c = app.conf
print(json.dumps({k: c[k] for k in (
    "broker_url", "broker_transport_options", "result_backend", "result_backend_transport_options",
    "task_acks_late", "task_reject_on_worker_lost", "task_default_queue", "redbeat_redis_url",
    "redbeat_redis_options")}, default=list))
"""


def celery_conf(tmp_path: Path, redis_url: str, prefix: str, worker: str = "") -> dict[str, Any]:
    config = config_file(tmp_path, redis_url, prefix, worker + '[[channels]]\nname = "outbox"\ntype = "outbox"\n')
    env = {**os.environ, "DISTRIBUTOR_CONFIG": str(config)}
    env.pop("DISTRIBUTOR_REDIS_URL", None)
    done = subprocess.run([sys.executable, "-c", SHOW], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_rabbitmq_broker_gets_no_redis_options_and_results_stay_in_redis(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    amqp = "amqp://guest:guest@rabbit.internal:5672/portal"
    conf = celery_conf(tmp_path, redis_url, prefix, f'[worker]\nbroker_url = "{amqp}"\n')
    assert conf["broker_url"] == amqp and conf["broker_transport_options"] == {}
    assert conf["result_backend"] == redis_url
    assert conf["result_backend_transport_options"] == {"global_keyprefix": prefix + "celery:"}
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["task_default_queue"] == "distributor"


def test_redis_broker_keeps_its_prefix_and_visibility_timeout(tmp_path: Path, redis_url: str, prefix: str) -> None:
    conf = celery_conf(tmp_path, redis_url, prefix)
    assert conf["broker_url"] == redis_url == conf["result_backend"] == conf["redbeat_redis_url"]
    assert conf["broker_transport_options"] == {"visibility_timeout": 3600, "global_keyprefix": prefix + "celery:"}
    assert conf["redbeat_redis_options"] == {}


def test_sentinel_url_reaches_broker_results_and_beat_through_the_sentinels(tmp_path: Path, prefix: str) -> None:
    conf = celery_conf(tmp_path, "redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379/portal/2", prefix)
    hosts = "sentinel://:pw@10.0.0.1:26379/2;sentinel://:pw@10.0.0.2:26379/2"
    assert conf["broker_url"] == hosts == conf["result_backend"]
    for options in (conf["broker_transport_options"], conf["result_backend_transport_options"]):
        assert options["master_name"] == "portal" and options["global_keyprefix"] == prefix + "celery:"
    assert conf["redbeat_redis_url"].startswith("redis-sentinel")
    beat = conf["redbeat_redis_options"]
    assert beat["sentinels"] == [["10.0.0.1", 26379], ["10.0.0.2", 26379]]
    assert (beat["service_name"], beat["db"], beat["password"]) == ("portal", 2, "pw")
