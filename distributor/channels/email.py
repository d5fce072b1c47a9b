"""Email through any SMTP server: one message per article to the whole list.

The message has a text and an HTML part (UTF-8; a Vietnamese subject is RFC 2047-encoded by the
stdlib). Recipients go in the envelope only (Bcc), so no reader sees the list. SMTP has no
idempotency, but the Message-ID is derived from the delivery key, so a repeat caused by a lost
answer carries the same id and receivers (and list software) can drop it as a duplicate.
Reply codes decide retries: 4xx and broken connections are transient, 5xx are permanent.
"""

from __future__ import annotations

import hashlib
import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from distributor import i18n
from distributor import text as textlib
from distributor.channels.base import TEMPLATES, Channel, compiled
from distributor.errors import ChannelError
from distributor.models import Article, Post, Receipt
from distributor.settings import ChannelSettings, Duration, _

log = logging.getLogger(__name__)

SUBJECT_LIMIT = 200  # graphemes; the header is folded, but a long subject helps nobody
_LINE_BREAKS = re.compile(r"[\r\n]+")


def mail_locale(language: str | None, site_language: str) -> str:
    """The catalog for an article's language ("vi-VN" -> "vi"), else the site's, else English: an
    e-mail's fixed words ("Read the full article") match the article they frame."""
    for tag in (language, site_language):
        base = (tag or "").replace("_", "-").split("-")[0].strip().lower()
        if base in i18n.LOCALES:
            return base
    return i18n.SOURCE_LOCALE


def _address(value: str) -> str:
    if _LINE_BREAKS.search(value) or "@" not in parseaddr(value)[1]:
        raise ValueError(_("{value} is not an email address").format(value=repr(value)))
    return value.strip()


class EmailSettings(ChannelSettings):
    host: str
    port: int = Field(default=587, ge=1, le=65535)  # 465 when security = "tls" and no port given
    username: str | None = None
    password: SecretStr | None = None
    security: Literal["starttls", "tls", "none"] = "starttls"
    sender: str  # "Cổng thông tin <news@example.gov.vn>" or a bare address
    recipients: list[str] = Field(min_length=1)
    subject_template: str | None = None  # jinja2, same variables as the message; default the title
    timeout: Duration = 30
    verify_tls: bool = True
    ca_file: str | None = None  # a CA bundle for a private or self-signed server certificate

    @model_validator(mode="before")
    @classmethod
    def _compatible(cls, data: Any) -> Any:
        """Accept DESIGN.md's `starttls = true|false` and give implicit TLS its own port."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "starttls" in data:
            flag = data.pop("starttls")
            if not isinstance(flag, bool):
                raise ValueError(_("starttls must be true or false"))
            implied = "starttls" if flag else "none"
            if data.setdefault("security", implied) not in (implied, "tls"):
                raise ValueError(
                    _("starttls = {flag} contradicts security = {security}").format(
                        flag=str(flag).lower(), security=repr(data["security"])
                    )
                )
        if data.get("security") == "tls":
            data.setdefault("port", 465)
        return data

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        return _address(value)

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        return [_address(item) for item in value]

    @field_validator("ca_file")
    @classmethod
    def _ca_file(cls, value: str | None) -> str | None:
        if value and not Path(value).is_file():
            raise ValueError(_("CA file {path} does not exist").format(path=repr(value)))
        return value

    @model_validator(mode="after")
    def _credentials_together(self) -> EmailSettings:
        if bool(self.username) != bool(self.password and self.password.get_secret_value()):
            raise ValueError(_("username and password must be set together (or both left out)"))
        return self


class Email(Channel):
    kind = "email"
    settings_model = EmailSettings
    limit = 20_000
    max_hashtags = 0
    # Delivered mail sits in the recipients' mailboxes; SMTP has no recall.
    cannot_edit = "an e-mail cannot be changed once sent"
    cannot_delete = "an e-mail cannot be unsent"

    @property
    def config(self) -> EmailSettings:
        assert isinstance(self.settings, EmailSettings)
        return self.settings

    # --- rendering -------------------------------------------------------------------------------

    def extra(self, article: Article, context: dict[str, Any]) -> dict[str, Any]:
        """The subject and the HTML part, rendered beside the fitted text part."""
        full = {**context, "summary": article.summary, "language": article.language}
        locale = mail_locale(article.language, self.site.language)
        html = i18n.jinja_environment(TEMPLATES, locale, "mail")  # its fixed words in the article's language
        body = html.get_template("email_html.j2").render(**full)
        subject = compiled(self.config.subject_template or "{{ title }}", False).render(**full)
        subject = textlib.truncate(textlib.clean_text(_LINE_BREAKS.sub(" ", subject)), SUBJECT_LIMIT)
        return {**super().extra(article, context), "subject": subject or article.title, "html": body}

    # --- delivery --------------------------------------------------------------------------------

    def message_id(self, key: str) -> str:
        """Stable per delivery key, so a repeated send is recognisable as the same message."""
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]  # short: the header stays unfolded
        domain = parseaddr(self.config.sender)[1].rpartition("@")[2] or "distributor.invalid"
        return f"<{digest}@{domain}>"

    def compose(self, post: Post, key: str) -> EmailMessage:
        message = EmailMessage(policy=SMTP_POLICY)
        message["Subject"] = str(post.extra.get("subject") or post.title)
        message["From"] = self.config.sender
        message["To"] = "undisclosed-recipients:;"
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = self.message_id(key)
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(post.text, charset="utf-8")
        if post.extra.get("html"):
            message.add_alternative(str(post.extra["html"]), subtype="html", charset="utf-8")
        return message

    def send(self, post: Post, key: str) -> Receipt:
        message = self.compose(post, key)
        recipients = self.config.recipients
        smtp = self._open()
        try:
            refused = smtp.send_message(message, from_addr=parseaddr(self.config.sender)[1], to_addrs=recipients)
        except smtplib.SMTPServerDisconnected as exc:
            # The server may have taken the message before the connection broke.
            raise _failure(exc, maybe_sent=True) from None
        except smtplib.SMTPException as exc:  # a reply code: the server answered
            raise _failure(exc) from None
        except OSError as exc:  # timeout or reset mid-conversation: as unknown as a disconnect
            raise _failure(exc, maybe_sent=True) from None
        finally:
            _close(smtp)
        if refused:
            codes = sorted({str(code) for code, _ in refused.values()})
            log.warning("%s: %d of %d recipients refused (%s)", self.name, len(refused), len(recipients), codes)
        return Receipt(post_id=str(message["Message-ID"]), url=None)

    def check(self) -> str:
        smtp = self._open()
        _close(smtp)
        config = self.config
        who = f"logged in as {config.username}" if config.username else "connected (no login configured)"
        return f"SMTP {config.host}:{config.port} ({config.security}): {who}"

    # --- SMTP ------------------------------------------------------------------------------------

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.config.ca_file)
        if not self.config.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _open(self) -> smtplib.SMTP:
        """Connect, EHLO, STARTTLS when configured, log in; failures come back as ChannelError."""
        config = self.config
        smtp: smtplib.SMTP | None = None
        try:
            if config.security == "tls":
                smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout, context=self._tls())
            else:
                smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
            smtp.ehlo()
            if config.security == "starttls":
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            if config.username and config.password:
                smtp.login(config.username, config.password.get_secret_value())
            return smtp
        except (smtplib.SMTPException, OSError) as exc:
            if smtp is not None:
                _close(smtp)
            raise _failure(exc, where=f"{config.host}:{config.port}") from None


def _close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _failure(exc: BaseException, *, maybe_sent: bool = False, where: str = "") -> ChannelError:
    """SMTP exceptions -> ChannelError: 4xx and network trouble transient, 5xx permanent."""
    prefix = f"email: {where}: " if where else "email: "
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        replies = "; ".join(sorted({f"{code} {_text(reply)}" for code, reply in exc.recipients.values()}))
        transient = all(400 <= code < 500 for code in codes)
        return ChannelError(
            f"{prefix}every recipient refused: {replies}", permanent=not transient, code=min(codes, default=None)
        )
    if isinstance(exc, smtplib.SMTPResponseException):  # a 454 login refusal is the server's trouble
        what = "login refused: " if isinstance(exc, smtplib.SMTPAuthenticationError) else ""
        return ChannelError(
            f"{prefix}{what}{exc.smtp_code} {_text(exc.smtp_error)}", permanent=exc.smtp_code >= 500, code=exc.smtp_code
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ChannelError(
            f"{prefix}TLS certificate not trusted ({exc.verify_message}); set ca_file, or verify_tls = false",
            permanent=True,
        )
    if isinstance(exc, smtplib.SMTPException) and not isinstance(exc, smtplib.SMTPServerDisconnected):
        # STARTTLS or AUTH not offered, no usable login method: the configuration must change.
        return ChannelError(f"{prefix}{exc}", permanent=True)
    return ChannelError(f"{prefix}connection failed: {type(exc).__name__}: {exc}", maybe_sent=maybe_sent)


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:300]
