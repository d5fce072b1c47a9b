"""Every Redis key name this service uses, in one place, under one configurable prefix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "distributor:"

    # articles and change detection
    def article(self, article_id: str) -> str:
        return f"{self.article_prefix()}{article_id}"

    def article_prefix(self) -> str:
        """What `article` puts before the id (a Lua script that finds ids builds the key itself)."""
        return f"{self.prefix}article:"

    def article_hash(self) -> str:
        """Hash article id -> content hash of the stored version."""
        return f"{self.prefix}article-hashes"

    def article_search(self) -> str:
        """Hash article id -> what the console's search matches: casefolded title, source and
        casefolded categories, separated by \x1f (categories by '|')."""
        return f"{self.prefix}articles:search"

    def fanout_pending(self) -> str:
        """Sorted set article id -> when it was stored as new: its fan-out (deliveries) is not done yet.
        Set atomically with the article, removed once fan-out decided; the sweep finishes what a
        crashed worker left between the two."""
        return f"{self.prefix}articles:fanout-pending"

    def articles_by_time(self) -> str:
        """Sorted set of every published article, scored by publish time."""
        return f"{self.prefix}articles:by-time"

    def source_items(self, source: str) -> str:
        """Set of article ids a source currently lists (for removal detection)."""
        return f"{self.prefix}source:{source}:items"

    def source_state(self, source: str) -> str:
        return f"{self.prefix}source:{source}:state"

    def source_seen(self) -> str:
        """Set of sources that completed their first poll (the no-backfill rule)."""
        return f"{self.prefix}sources:seen"

    # feeds
    def feed_index(self, feed: str) -> str:
        return f"{self.prefix}feed:{feed}:index"

    def feed_render(self, feed: str, fmt: str) -> str:
        return f"{self.prefix}feed:{feed}:{fmt}"

    def feed_updates(self) -> str:
        """Pub/sub channel: a feed's rendering changed (web processes refresh their cache)."""
        return f"{self.prefix}feed-updates"

    def feed_names(self) -> str:
        return f"{self.prefix}feeds"

    # deliveries
    def delivery(self, article_id: str, channel: str) -> str:
        return f"{self.delivery_prefix()}{article_id}:{channel}"

    def delivery_prefix(self) -> str:
        """What `delivery` puts before 'article_id:channel'."""
        return f"{self.prefix}delivery:"

    def deliveries_by_time(self) -> str:
        """Sorted set of 'article_id:channel' scored by last change, for listings."""
        return f"{self.prefix}deliveries"

    def delivery_history(self, article_id: str, channel: str) -> str:
        """List of JSON entries: what happened to the delivery's post (posted, edited, deleted ...)."""
        return f"{self.prefix}delivery:{article_id}:{channel}:history"

    def post_ops_due(self) -> str:
        """Sorted set of 'article_id:channel' whose post has an edit or a deletion to do, scored by when."""
        return f"{self.prefix}deliveries:post-ops"

    def retracted(self) -> str:
        """Set of article ids an operator retracted: the source listing them again does not bring them back."""
        return f"{self.prefix}articles:retracted"

    def source_missing(self, source: str) -> str:
        """Hash article id -> when a complete listing of the source first missed it (retract_on_remove)."""
        return f"{self.prefix}source:{source}:missing"

    def channel_state(self, channel: str) -> str:
        """Hash of what a channel must persist (refreshed tokens, sessions)."""
        return f"{self.prefix}channel:{channel}:state"

    def channel_lock(self, channel: str, purpose: str) -> str:
        return f"{self.prefix}channel:{channel}:lock:{purpose}"

    def rate(self, channel: str) -> str:
        return f"{self.prefix}channel:{channel}:rate"

    def breaker(self, channel: str) -> str:
        """Hash: the channel's circuit breaker (state, failures in a row, trips, until, reason, probe)."""
        return f"{self.prefix}channel:{channel}:breaker"

    def in_flight(self, channel: str) -> str:
        """Sorted set 'article_id:channel' -> lease end: the deliveries being sent right now."""
        return f"{self.prefix}channel:{channel}:in-flight"

    def ready(self, channel: str) -> str:
        """List of article ids whose delivery to the channel is due now, oldest first: what its
        drainers post (`distributor.drain`)."""
        return f"{self.prefix}channel:{channel}:ready"

    def drainers(self, channel: str) -> str:
        """Sorted set drainer token -> lease end: the channel's drainers at work."""
        return f"{self.prefix}channel:{channel}:drainers"

    def spacing(self, channel: str) -> str:
        """Hash: the channel's pace (next free slot, last post start, 'day:YYYY-MM-DD' counts, version)."""
        return f"{self.prefix}channel:{channel}:spacing"

    def reservations(self, channel: str) -> str:
        """Sorted set 'article_id:channel' -> the time slot reserved for that delivery."""
        return f"{self.prefix}channel:{channel}:reservations"

    def approval_notice(self, article_id: str, channel: str) -> str:
        """Marker: the editors' channel `channel` was shown `article_id`'s preview (sent once)."""
        return f"{self.prefix}approval-notice:{article_id}:{channel}"

    # shares
    def shares(self, article_id: str) -> str:
        """Hash network -> count for one article."""
        return f"{self.prefix}shares:{article_id}"

    def shares_top(self, period: str) -> str:
        """Sorted set article id -> shares in one period bucket ('all', 'day:2026-11-27', ...)."""
        return f"{self.prefix}shares:top:{period}"

    def share_seen(self, fingerprint: str) -> str:
        return f"{self.prefix}shares:seen:{fingerprint}"

    # clicks on our own posts (channels with track_clicks) and engagement the platforms report
    def clicks(self, article_id: str) -> str:
        """Hash channel -> clicks on the links in our posts of one article (through /r/)."""
        return f"{self.prefix}clicks:{article_id}"

    def clicks_top(self, period: str) -> str:
        """Sorted set article id -> clicks in one period bucket ('all', 'day:2026-11-27', ...)."""
        return f"{self.prefix}clicks:top:{period}"

    def click_seen(self, fingerprint: str) -> str:
        return f"{self.prefix}clicks:seen:{fingerprint}"

    def click_client_rate(self, client_hour: str) -> str:
        """A client's counted clicks on our posts in one hour ('<digest>:<hour>'), across articles
        (`[shares] client_limit`, as for readers' shares)."""
        return f"{self.prefix}clicks:rate:{client_hour}"

    def engagement(self, article_id: str) -> str:
        """Hash '<channel>:<metric>' -> count (and '<channel>:pulled_at', '<channel>:error') for one article."""
        return f"{self.prefix}engagement:{article_id}"

    def engagement_daily(self, article_id: str) -> str:
        """Hash '<day>:<channel>' -> the channel's engagement (every metric added up) as last pulled that
        day, in the site's timezone: the console's chart per day."""
        return f"{self.prefix}engagement:daily:{article_id}"

    def engagement_unavailable(self, channel: str) -> str:
        """Why a channel's platform will not report engagement (e.g. X's API tier); kept for a while, so
        the platform is not asked again at every pull."""
        return f"{self.prefix}engagement:unavailable:{channel}"

    def engagement_rate(self, channel: str) -> str:
        """The pace of engagement reads, apart from the channel's posting pace (`rate`)."""
        return f"{self.prefix}channel:{channel}:rate:engagement"

    def share_uniques(self, article_id: str) -> str:
        """HyperLogLog of the digests (client + UA) of an article's sharers."""
        return f"{self.prefix}shares:uniques:{article_id}"

    def share_client_rate(self, client_hour: str) -> str:
        """A client's counted clicks in one hour ('<digest>:<hour>'), across articles (`[shares] client_limit`)."""
        return f"{self.prefix}shares:rate:{client_hour}"

    def share_batch(self, batch_id: str) -> str:
        """An applied batch of clicks, remembered so that a retried batch is not counted twice."""
        return f"{self.prefix}shares:batch:{batch_id}"

    def push_seen(self, signature: str) -> str:
        """A used push signature, kept for the replay window."""
        return f"{self.prefix}push:seen:{signature}"

    # operations
    def heartbeats(self) -> str:
        """Hash 'worker:<node>' | 'beat:<node>' -> '<unix time> <role>': who is alive, and when it last said so."""
        return f"{self.prefix}heartbeats"

    def instance(self) -> str:
        """Hash: the installation's identity (instance, epoch), also kept in the journal outside
        Redis: its absence while the journal has one means Redis lost the state."""
        return f"{self.prefix}instance"

    def state_lost(self) -> str:
        """Hash: when Redis was found without the state and what the journal restored (until the
        operator acknowledges it)."""
        return f"{self.prefix}state-lost"

    # the operator console (distributor.web.console)
    def console_session(self, session_id: str) -> str:
        """Hash: one signed-in console session (operator name, CSRF token, flash messages), with a TTL."""
        return f"{self.prefix}console:session:{session_id}"

    def console_signing_key(self) -> str:
        """The random key that signs console cookies when `[server] session_secret` is not set."""
        return f"{self.prefix}console:signing-key"

    def sign_in_failures(self, client: str) -> str:
        """Counter of failed console sign-ins from one client address (expires with the window)."""
        return f"{self.prefix}console:sign-in-failures:{client}"

    def source_health(self, source: str) -> str:
        """Hash: the outcome of a source's latest poll (when, new/updated/removed, error)."""
        return f"{self.prefix}source:{source}:health"

    def audit(self) -> str:
        """Stream of operator actions (ids are their times; trimmed to `[audit] retention`)."""
        return f"{self.prefix}audit"

    def counters(self, family: str) -> str:
        """Hash of installation-wide counters for /metrics ('deliveries', 'latency', 'polls',
        'shares'): written by whichever process did the work, read by any web process at scrape
        time (see `distributor.counters`)."""
        return f"{self.prefix}metrics:{family}"

    def broker_queue(self, queue: str) -> str:
        """The list that holds a Celery queue's waiting tasks on a Redis broker (kombu's key under
        the `global_keyprefix` worker.celery_app gives it; priorities get lists of their own)."""
        return f"{self.prefix}celery:{queue}"

    def beat_prefix(self) -> str:
        return f"{self.prefix}beat:"

    def beat_lock(self) -> str:
        """RedBeat's lock (its default name under our prefix): the active beat holds it."""
        return f"{self.beat_prefix()}:lock"

    def beat_holder(self) -> str:
        """Hash: who took the beat lock (host, pid, since, a digest of its token), for /healthz."""
        return f"{self.beat_prefix()}:lock-holder"

    def lock(self, name: str) -> str:
        return f"{self.prefix}lock:{name}"
