"""`distributor init`: a commented starter config and env.example, so nobody starts by copying an example."""

from __future__ import annotations

from pathlib import Path

CONFIG_NAME = "distributor.toml"
ENV_NAME = "env.example"

STARTER_CONFIG = """\
# Distributor: a starter configuration written by `distributor init`.
# Check it with `distributor check --config distributor.toml`; every key is described in
# docs/configuration.md (the defaults are shown commented out below). Secrets are never written
# here: a value like "${TELEGRAM_TOKEN}" is read from the environment (see env.example).

[site]
title = "My news site"                 # the publisher's name: feed titles, templates
url = "https://news.example.vn"        # the publisher's site (absolute http(s) URL)
description = "News and announcements"
language = "vi"                        # default article language (BCP 47): "vi", "en"...
timezone = "Asia/Ho_Chi_Minh"          # dates without an offset are read in this zone
public_url = "http://127.0.0.1:8000"   # where this service is reached: feed self links, share links
# author = ""                          # the feeds' author (default: the title)
# logo = "https://news.example.vn/logo.png"
# allowed_hosts = []                   # other host names of the site's article URLs

[redis]
# Empty: an embedded redis-server under <data_dir>/redis. A real Redis (AOF on), its password
# from the environment: url = "${REDIS_URL}" with REDIS_URL=redis://:password@host:6379/0
url = ""
key_prefix = "distributor:"

[paths]
data_dir = "data"                      # embedded Redis data, outbox, image cache, public files
# public_dir = "data/public"           # feed files written for a static server

[server]
host = "127.0.0.1"
port = 8000
# api_tokens = ["${DISTRIBUTOR_API_TOKEN}"]   # operator tokens: pushes, approvals, the dashboard
# push_secret = "${DISTRIBUTOR_PUSH_SECRET}"  # HMAC key for signed pushes
# push_window = 300
# trusted_proxies = []
# public_metrics = false
# access_log = false

# [worker]
# broker_url = ""                      # a separate Celery broker (RabbitMQ, another Redis)
# pool = "threads"
# concurrency = 12
# max_attempts = 8
# retry_backoff = 10
# lease = 300
# sweep_interval = 30
# stop_timeout = 30
# breaker_failures = 5
# breaker_cooldown = 60
# edit_debounce = "60s"

# [audit]
# retention = "90d"

# [shares]
# networks = ["facebook", "x", "telegram", "zalo", "linkedin", "email", "bluesky", "copy"]
# repeat_window = 86400
# ignore_bots = true
# client_limit = 30
# utm = true
# utm_campaign = ""
# cors_origins = []
# flush_interval = 0.1
# engagement_days = 7
# engagement_interval = 900

# One source: a folder of Markdown (front matter) or JSON article files. Other types: feed, html,
# sitemap, wordpress, push (docs/sources.md). For example:
#   [[sources]]
#   name = "portal"
#   type = "feed"
#   url = "https://news.example.vn/rss"
#   interval = "5m"
[[sources]]
name = "articles"
type = "directory"
path = "data/articles"
interval = "30s"
announce_existing = false              # articles found on the first poll fill the feeds, unposted
# category = "News"                    # given to articles that have none
# max_age = "2d"                       # older articles reach the feeds but are not posted
# enabled = true
# retract_on_remove = false

[[feeds]]
name = "all"                           # served at /feeds/all.rss, .atom, .json
title = "All news"
limit = 50
per_category = true                    # also one feed per category
# ttl = 15
# hubs = []
# filters.categories = ["News"]

# The outbox channel writes each post as a JSON line to data/outbox.jsonl: see what would be
# posted before connecting real platforms.
[[channels]]
name = "outbox"
type = "outbox"
# approval = false                     # hold each post until `distributor approve`
# rate_per_minute = 10
# min_interval = "3m"
# max_per_day = 20
# quiet_hours = "22:00-06:00"
# track_clicks = false
# on_edit = "edit"                     # or "repost", "ignore"

# Other channels (docs/channels/<type>.md tells how to get each token). Uncomment and fill in;
# the secrets come from the environment (env.example lists them).
#
# [[channels]]
# name = "facebook"
# type = "facebook"
# page_id = "${FACEBOOK_PAGE_ID}"
# access_token = "${FACEBOOK_PAGE_TOKEN}"
#
# [[channels]]
# name = "zalo"
# type = "zalo"
# access_token = "${ZALO_ACCESS_TOKEN}"
# refresh_token = "${ZALO_REFRESH_TOKEN}"
# app_id = "${ZALO_APP_ID}"
# secret_key = "${ZALO_SECRET_KEY}"
# mode = "broadcast"
# cover = "https://news.example.vn/zalo-cover.jpg"
#
# [[channels]]
# name = "telegram"
# type = "telegram"
# token = "${TELEGRAM_TOKEN}"
# chat_id = "@my_channel"
#
# [[channels]]
# name = "x"
# type = "x"
# api_key = "${X_API_KEY}"
# api_secret = "${X_API_SECRET}"
# access_token = "${X_ACCESS_TOKEN}"
# access_token_secret = "${X_ACCESS_TOKEN_SECRET}"
#
# [[channels]]
# name = "mastodon"
# type = "mastodon"
# api_base = "https://mastodon.social"
# access_token = "${MASTODON_TOKEN}"
#
# [[channels]]
# name = "bluesky"
# type = "bluesky"
# handle = "news.bsky.social"
# app_password = "${BLUESKY_APP_PASSWORD}"
#
# [[channels]]
# name = "discord"                     # also "slack" and "teams": a webhook URL
# type = "discord"
# url = "${DISCORD_WEBHOOK_URL}"
#
# [[channels]]
# name = "partners"
# type = "webhook"
# url = "https://partner.example.vn/hooks/news"
# secret = "${PARTNER_WEBHOOK_SECRET}"
#
# [[channels]]
# name = "newsletter"
# type = "email"
# host = "smtp.example.vn"
# username = "news@example.vn"
# password = "${SMTP_PASSWORD}"
# sender = "News <news@example.vn>"
# recipients = ["subscribers@lists.example.vn"]
#
# [[channels]]
# name = "alerts"
# type = "apprise"
# urls = ["${APPRISE_URL}"]
"""

STARTER_ENV = """\
# The secrets distributor.toml may read as ${NAME}. Copy to .env (docker compose reads it) or
# export them; keep only those your config uses. Any NAME may instead be a file named by
# NAME_FILE=/run/secrets/... (Docker secrets); a NAME set both ways is a config error.
# DISTRIBUTOR_CONFIG=distributor.toml          # the config file (or pass --config)
# DISTRIBUTOR_LANG=vi                          # the command line's language (vi or en)
# REDIS_URL=redis://127.0.0.1:6379/0           # [redis] url = "${REDIS_URL}"
# DISTRIBUTOR_API_TOKEN=change-me-long-random-token   # [server] api_tokens
# DISTRIBUTOR_PUSH_SECRET=change-me-hmac-key          # [server] push_secret
# FACEBOOK_PAGE_ID=123456789012345
# FACEBOOK_PAGE_TOKEN=EAAB-page-access-token
# ZALO_ACCESS_TOKEN=zalo-oa-access-token
# ZALO_REFRESH_TOKEN=zalo-oa-refresh-token
# ZALO_APP_ID=1234567890123456789
# ZALO_SECRET_KEY=zalo-app-secret-key
# TELEGRAM_TOKEN=123456789:token-from-BotFather
# X_API_KEY=x-consumer-key
# X_API_SECRET=x-consumer-secret
# X_ACCESS_TOKEN=x-user-access-token
# X_ACCESS_TOKEN_SECRET=x-user-access-token-secret
# MASTODON_TOKEN=mastodon-app-access-token
# BLUESKY_APP_PASSWORD=abcd-efgh-ijkl-mnop
# DISCORD_WEBHOOK_URL=https://discord.com/api/webhooks/123/secret-token
# PARTNER_WEBHOOK_SECRET=shared-hmac-secret
# SMTP_PASSWORD=smtp-password
# APPRISE_URL=json://ops.example.vn/alerts
"""


class WouldOverwrite(Exception):
    """A starter file exists already; the operator's own config is never replaced silently."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path


def write_starter(directory: Path, force: bool = False) -> list[Path]:
    """Write distributor.toml and env.example into `directory`; refuse to overwrite unless forced."""
    files = {directory / CONFIG_NAME: STARTER_CONFIG, directory / ENV_NAME: STARTER_ENV}
    if not force:
        for path in files:
            if path.exists():
                raise WouldOverwrite(path)
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return list(files)
