"""The error types every part raises, so callers can tell config, input and delivery failures apart."""

from __future__ import annotations

from distributor.urls import mask_url, mask_urls


class DistributorError(Exception):
    """Base of every error this package raises on purpose."""


def N_(message: str) -> str:
    """Marks an English template for the cli catalog (`python -m distributor.i18n update` extracts
    it) without translating it here: the front end that shows it does."""
    return message


class Refusal(DistributorError, ValueError):
    """A request refused for a reason the operator reads: an English template (marked with `N_`)
    and its named fields. `str()` is English (the API and the logs); the command line says it in the
    operator's language with `i18n.cli_gettext(template).format(**fields)` (`cli.said`)."""

    def __init__(self, template: str, **fields: object) -> None:
        self.template = template
        self.fields = fields
        super().__init__(template.format(**fields))


class ConfigError(DistributorError):
    """Invalid configuration; `problems` holds one located message per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class SourceError(DistributorError):
    """A source could not be read or one of its inputs is malformed.

    The message always names the source and the input (URL or path) so an operator can act on it,
    with the URL's secrets masked (`urls.mask_url`): a source URL may carry a password or a token,
    and these errors go to logs, poll reports and the dashboard.
    """

    def __init__(self, source: str, message: str, *, input: str | None = None) -> None:
        self.source = source
        self.input = mask_url(input) if input else input
        where = f"{source}: {self.input}: " if input else f"{source}: "
        super().__init__(where + mask_urls(message))


class ChannelError(DistributorError):
    """A delivery failed.

    permanent:    retrying will not help (bad token, rejected content); the operator must act.
    retry_after:  seconds the platform asked us to wait (429 Retry-After and friends).
    maybe_sent:   the request may have reached the platform (read timeout, crash): the post's fate is
                  unknown and must not be blindly retried on a platform without idempotency.
    duplicate:    the platform says this exact post already exists (treated as already posted).
    code:         the platform's own error code, as text.
    auth:         the platform refused our credentials (expired or revoked token, deleted webhook):
                  every post to this channel will fail the same way until the operator acts, so the
                  channel pauses (see `distributor.admission`) and its deliveries wait.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        maybe_sent: bool = False,
        duplicate: bool = False,
        code: str | int | None = None,
        status: int | None = None,
        auth: bool = False,
    ) -> None:
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent
        self.duplicate = duplicate
        self.code = None if code is None else str(code)
        self.status = status
        self.auth = auth
        super().__init__(message)

    def __repr__(self) -> str:
        kind = "permanent" if self.permanent else "transient"
        return f"ChannelError({self.message!r}, {kind}, code={self.code!r}, status={self.status!r})"
