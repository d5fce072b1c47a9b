"""Email: config (incl. the `starttls` bool), real SMTP delivery to aiosmtpd on loopback over
plain, STARTTLS and implicit TLS, reply codes mapped to retry classes, secrets kept out."""

from __future__ import annotations

import email
import email.policy
import logging
import re
import socket
import ssl
import subprocess
import unicodedata
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from distributor.channels.email import Email, EmailSettings
from distributor.errors import ChannelError, ConfigError
from tests.unit.channels.vi_articles import EMOJI_TITLE, SEED_TITLE, article, channel_from, hard_articles

USER = "news@tinhuy.example.gov.vn"
PASSWORD = "smtp-secret-Q8w!x"
RECIPIENTS = ["ban.bien.tap@example.vn", "lanh.dao@example.vn", "thu.vien@example.vn"]


class Inbox:
    """An aiosmtpd handler that keeps what it accepts and answers scripted codes on demand."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.rcpt_replies: dict[str, str] = {}
        self.data_reply: str | None = None
        self.auth_reply: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"

    def reset(self) -> None:
        self.messages.clear()
        self.rcpt_replies.clear()
        self.data_reply = None
        self.auth_reply = None


def authenticate(server, session, envelope, mechanism, auth_data):
    scripted = server.event_handler.auth_reply
    if scripted:
        return AuthResult(success=False, handled=False, message=scripted)
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI (no extra packages)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert, context


@pytest.fixture(scope="module")
def servers(certificate):
    """Three real SMTP servers: plain with AUTH, STARTTLS required, implicit TLS."""
    cert, context = certificate
    inbox = Inbox()
    common: dict[str, Any] = {"hostname": "127.0.0.1", "authenticator": authenticate, "ready_timeout": 5}
    plain = Controller(inbox, port=free_port(), auth_require_tls=False, **common)
    starttls = Controller(inbox, port=free_port(), tls_context=context, require_starttls=True, **common)
    # aiosmtpd only counts STARTTLS as TLS for AUTH; this session is encrypted from the start.
    implicit = Controller(inbox, port=free_port(), ssl_context=context, auth_require_tls=False, **common)
    for controller in (plain, starttls, implicit):
        controller.start()
    yield {"none": plain.port, "starttls": starttls.port, "tls": implicit.port, "inbox": inbox, "cert": cert}
    for controller in (plain, starttls, implicit):
        controller.stop()


@pytest.fixture
def inbox(servers):
    servers["inbox"].reset()
    return servers["inbox"]


def make(servers, server="none", **keys) -> Email:
    entry = {
        "name": "mail",
        "type": "email",
        "host": "127.0.0.1",
        "port": servers[server],
        "security": server,
        "username": USER,
        "password": PASSWORD,
        "sender": f"Cổng thông tin điện tử tỉnh <{USER}>",
        "recipients": RECIPIENTS,
        "timeout": 5,
        **keys,
    }
    channel = channel_from({k: v for k, v in entry.items() if v is not None})
    assert isinstance(channel, Email)
    return channel


def received(inbox, index=0):
    mail_from, rcpt_tos, raw = inbox.messages[index]
    return mail_from, rcpt_tos, raw, email.message_from_bytes(raw, policy=email.policy.default)


# --- configuration -------------------------------------------------------------------------------


BASE = {"name": "m", "type": "email", "host": "smtp.example.vn", "sender": USER, "recipients": RECIPIENTS}


def settings_of(entry) -> EmailSettings:
    channel = channel_from(entry)
    assert isinstance(channel, Email)
    return channel.config


def test_config_defaults_and_the_starttls_bool():
    config = settings_of(BASE)
    assert (config.port, config.security, config.verify_tls) == (587, "starttls", True)
    assert settings_of({**BASE, "starttls": False}).security == "none"
    assert settings_of({**BASE, "starttls": True}).security == "starttls"
    implicit = settings_of({**BASE, "security": "tls"})
    assert (implicit.security, implicit.port) == ("tls", 465)
    assert settings_of({**BASE, "security": "tls", "port": 2465}).port == 2465


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ({"host": None}, "key 'host' is required"),
        ({"sender": None}, "key 'sender' is required"),
        ({"recipients": []}, "key 'recipients'"),
        ({"recipients": ["not-an-address"]}, "is not an email address"),
        ({"sender": "a@b.vn\r\nBcc: x@y.vn"}, "is not an email address"),
        ({"username": USER}, "username and password must be set together"),
        ({"password": PASSWORD}, "username and password must be set together"),
        ({"security": "ssl"}, "key 'security'"),
        ({"starttls": False, "security": "starttls"}, "contradicts"),
        ({"ca_file": "/nonexistent/ca.pem"}, "does not exist"),
    ],
)
def test_config_rejected(keys, problem):
    entry = {**BASE, **keys}
    with pytest.raises(ConfigError) as caught:
        channel_from({k: v for k, v in entry.items() if v is not None})
    assert problem in str(caught.value) and PASSWORD not in str(caught.value)


# --- delivery ------------------------------------------------------------------------------------


def test_one_message_to_the_whole_list_with_text_and_html(servers, inbox):
    channel = make(servers)
    post = channel.render(article(image="https://tinhuy.example.gov.vn/anh.jpg"))
    receipt = channel.send(post, "delivery-42")

    mail_from, rcpt_tos, raw, message = received(inbox)
    assert len(inbox.messages) == 1
    assert mail_from == USER and rcpt_tos == RECIPIENTS
    for address in RECIPIENTS:  # Bcc: nobody sees the list
        assert address.encode() not in raw
    assert "Bcc" not in message
    assert message["Subject"] == SEED_TITLE
    raw_subject = re.search(rb"(?m)^Subject:(.*(?:\r?\n[ \t].*)*)", raw)
    assert raw_subject and raw_subject[1].isascii() and b"=?utf-8?" in raw_subject[1].lower()  # RFC 2047
    assert "Cổng thông tin điện tử tỉnh" in str(message["From"])
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    assert text.get_content().startswith(SEED_TITLE) and post.url in text.get_content()
    assert f'<a href="{post.url.replace("&", "&amp;")}"' in html.get_content()
    assert 'src="https://tinhuy.example.gov.vn/anh.jpg"' in html.get_content()
    assert "Chiều ngày 13/7/2021" in html.get_content()
    assert message["Message-ID"] == channel.message_id("delivery-42") == receipt.post_id
    assert message["Message-ID"].endswith("@tinhuy.example.gov.vn>")


def test_message_id_is_derived_from_the_key(servers, inbox):
    channel = make(servers)
    post = channel.render(article())
    channel.send(post, "k1")
    channel.send(post, "k1")
    channel.send(post, "k2")
    ids = [received(inbox, i)[3]["Message-ID"] for i in range(3)]
    assert ids[0] == ids[1] != ids[2]


def test_html_part_escapes_the_article_text(servers, inbox):
    channel = make(servers)
    # A title is plain text (markup was removed at normalisation) but may still hold "<", ">" and
    # "&" as text; a summary is text that may look like anything.
    title, summary = 'Kiểu List<Object> & "ưu đãi"', 'Tin <script>alert("x")</script> mới'
    channel.send(channel.render(article(title=title, summary=summary)), "k")
    html = received(inbox)[3].get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<Object>" not in html and "List&lt;Object&gt; &amp;" in html


def test_subject_template_and_no_header_injection(servers, inbox):
    channel = make(servers, subject_template="[{{ site }}] {{ title }}\nBcc: spy@example.com")
    channel.send(channel.render(article()), "k")
    _, rcpt_tos, raw, message = received(inbox)
    assert message["Subject"].startswith(f"[Cổng thông tin điện tử tỉnh] {SEED_TITLE}")
    assert message["Subject"].endswith(" Bcc: spy@example.com")  # kept as text of the subject line
    assert "Bcc" not in message and rcpt_tos == RECIPIENTS
    assert not re.search(rb"(?m)^Bcc:", raw)


def test_starttls_with_a_trusted_self_signed_certificate(servers, inbox):
    channel = make(servers, "starttls", ca_file=str(servers["cert"]))
    channel.send(channel.render(article()), "k")
    assert len(inbox.messages) == 1


def test_implicit_tls(servers, inbox):
    channel = make(servers, "tls", ca_file=str(servers["cert"]))
    channel.send(channel.render(article()), "k")
    assert len(inbox.messages) == 1


def test_untrusted_certificate_is_a_permanent_error_unless_verification_is_off(servers, inbox):
    with pytest.raises(ChannelError) as caught:
        make(servers, "starttls").send(make(servers, "starttls").render(article()), "k")
    assert caught.value.permanent and "certificate" in caught.value.message
    assert inbox.messages == []
    make(servers, "starttls", verify_tls=False).send(make(servers).render(article()), "k")
    assert len(inbox.messages) == 1


def test_server_demanding_starttls_refuses_a_plain_session(servers, inbox):
    channel = make(servers, "starttls", security="none", username=None, password=None)
    with pytest.raises(ChannelError) as caught:
        channel.send(channel.render(article()), "k")
    assert caught.value.permanent and caught.value.code == "530"


def test_partly_refused_recipients_still_deliver_to_the_rest(servers, inbox, caplog):
    inbox.rcpt_replies[RECIPIENTS[1]] = "550 5.1.1 No such user"
    with caplog.at_level(logging.WARNING):
        make(servers).send(make(servers).render(article()), "k")
    assert received(inbox)[1] == [RECIPIENTS[0], RECIPIENTS[2]]
    assert "1 of 3 recipients refused" in caplog.text


@pytest.mark.parametrize(
    ("rcpt", "data", "permanent", "code"),
    [
        ("450 4.2.1 Mailbox busy", None, False, "450"),
        ("550 5.1.1 No such user", None, True, "550"),
        (None, "451 4.3.0 Try again later", False, "451"),
        (None, "554 5.7.1 Message rejected as spam", True, "554"),
    ],
)
def test_reply_codes_decide_retries(servers, inbox, rcpt, data, permanent, code):
    if rcpt:
        inbox.rcpt_replies.update(dict.fromkeys(RECIPIENTS, rcpt))
    inbox.data_reply = data
    with pytest.raises(ChannelError) as caught:
        make(servers).send(make(servers).render(article()), "k")
    error = caught.value
    assert (error.permanent, error.code) == (permanent, code)
    assert (rcpt or data or "").split(" ", 2)[2] in error.message
    assert not error.maybe_sent
    assert PASSWORD not in str(error) and PASSWORD not in repr(error)


def test_wrong_password_is_permanent_and_never_shown(servers, inbox):
    wrong = "wrong-Passw0rd-xyz"
    channel = make(servers, password=wrong)
    with pytest.raises(ChannelError) as caught:
        channel.send(channel.render(article()), "k")
    error = caught.value
    assert error.permanent and error.code == "535" and "login refused" in error.message
    assert wrong not in str(error) and wrong not in repr(error) and PASSWORD not in str(error)
    with pytest.raises(ChannelError) as check:
        channel.check()
    assert check.value.permanent and wrong not in str(check.value)


def test_a_temporary_login_failure_is_retried(servers, inbox):
    # 454 is the server's own trouble (its auth backend is down), not a wrong password.
    inbox.auth_reply = "454 4.7.0 Temporary authentication failure"
    channel = make(servers)
    with pytest.raises(ChannelError) as caught:
        channel.send(channel.render(article()), "k")
    error = caught.value
    assert not error.permanent and not error.maybe_sent and error.code == "454"
    assert "Temporary authentication failure" in error.message and PASSWORD not in str(error)
    assert inbox.messages == []


def test_connection_refused_is_transient_and_not_sent():
    channel = channel_from({**BASE, "port": free_port(), "security": "none", "timeout": 2})
    with pytest.raises(ChannelError) as caught:
        channel.send(channel.render(article()), "k")
    assert not caught.value.permanent and not caught.value.maybe_sent


def test_check_logs_in_and_sends_nothing(servers, inbox):
    assert f"logged in as {USER}" in make(servers, "starttls", ca_file=str(servers["cert"])).check()
    assert inbox.messages == []


@pytest.mark.parametrize("name", list(hard_articles()))
def test_hard_articles_are_delivered_intact(servers, inbox, name):
    channel = make(servers)
    source = hard_articles()[name]
    post = channel.render(source)
    channel.send(post, f"k-{name}")
    message = received(inbox)[3]
    body = message.get_body(("plain",)).get_content()
    assert post.url in body and source.summary[:50] in body
    subject = message["Subject"]
    assert "\n" not in subject and subject.startswith(unicodedata.normalize("NFC", source.title)[:40])
    if name == "emoji title":
        assert subject.startswith(EMOJI_TITLE[:20])


# --- corrections and retractions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "reason"),
    [("edit", "an e-mail cannot be changed once sent"), ("delete", "an e-mail cannot be unsent")],
)
def test_a_sent_mail_cannot_be_edited_or_unsent_and_nothing_is_mailed(servers, inbox, operation, reason):
    channel = make(servers)
    receipt = channel.send(channel.render(article()), "key-1")
    assert not channel.can_edit and not channel.can_delete
    with pytest.raises(ChannelError) as caught:
        if operation == "edit":
            channel.edit(channel.render(article(title="Đính chính")), receipt, "key-1")
        else:
            channel.delete(receipt, "key-1")
    assert caught.value.permanent and caught.value.message == reason
    assert len(inbox.messages) == 1  # no correction mail went out


def test_the_mails_fixed_words_are_in_the_articles_language(servers, inbox):
    """A Vietnamese article's e-mail says "Đọc toàn bài", an English one "Read the full article"; an
    article in a language without a catalog falls back to the site's language."""
    channel = make(servers)
    for index, language in enumerate(("vi", "en-GB", "fr")):
        channel.send(channel.render(article(language=language)), f"k-{language}")
        html = received(inbox, index)[3].get_body(("html",)).get_content()
        assert f'<html lang="{language}">' in html
        if language == "en-GB":
            assert "Read the full article" in html and "Đọc toàn bài" not in html
            assert "You receive this e-mail as a subscriber to the news of Cổng thông tin điện tử tỉnh." in html
        else:  # "fr": the site's language (vi)
            assert "Đọc toàn bài" in html and "Read the full article" not in html
            assert "Bạn nhận được thư này vì đã đăng ký nhận tin của Cổng thông tin điện tử tỉnh." in html


def test_the_site_name_in_the_footer_is_escaped(servers, inbox):
    from distributor.channels.email import mail_locale

    assert (mail_locale("vi-VN", "en"), mail_locale("", "en"), mail_locale("de", "ja")) == ("vi", "en", "en")
    channel = make(servers)
    channel.site = channel.site.model_copy(update={"title": "Báo <b>Tuổi</b> & Trẻ"})
    channel.send(channel.render(article()), "k")
    html = received(inbox)[3].get_body(("html",)).get_content()
    assert "<b>Tuổi</b>" not in html and "Báo &lt;b&gt;Tuổi&lt;/b&gt; &amp; Trẻ." in html
