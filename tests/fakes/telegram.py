"""A loopback Telegram Bot API (platforms.md section 3).

Checks what Telegram checks: the token in `/bot<token>/<method>`, the chat and the bot's rights,
HTML entities (supported tags, balanced nesting), and the 4096 / 1024 limits counted after entity
parsing in UTF-16 code units. Answers with Telegram's `{"ok": ...}` envelopes.

Edits and deletions act on the accepted posts in `posts`: an edit replaces the post's fields and
appends the previous version to its `edits` list; a deletion sets `deleted`. The answers are
Telegram's: "message is not modified", "there is no text in the message to edit", "message to
edit not found", "message can't be deleted" (`undeletable` ids, or `can_delete = False` for a bot
without the right), "message to delete not found".
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from tests.fakes.scripted import ScriptedFake
from tests.fakes.server import Reply, Request

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
CHANNEL = {
    "id": -1001234567890,
    "title": "Tin tức Tây Ninh",
    "type": "channel",
    "username": "tintuc_tayninh",
}
TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "tg-emoji",
}
TAGS |= {"code", "pre", "blockquote"}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*)?)>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")
_HREF = re.compile(r"""href\s*=\s*"([^"]*)"|href\s*=\s*'([^']*)'""")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def error(code: int, description: str, **parameters: Any) -> Reply:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Reply(code, body)


def rate_limited(seconds: int) -> Reply:
    reply = error(429, f"Too Many Requests: retry after {seconds}", retry_after=seconds)
    reply.headers["Retry-After"] = str(seconds)
    return reply


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _decode(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("#x"):
            return chr(int(name[2:], 16))
        if name.startswith("#"):
            return chr(int(name[1:]))
        return _NAMED[name]

    return _ENTITY.sub(one, text)


def parse_html(markup: str) -> tuple[str, list[str]]:
    """Telegram's HTML parse mode: (plain text, link targets); ValueError like Telegram's 400."""
    plain: list[str] = []
    links: list[str] = []
    stack: list[str] = []
    position = 0
    while position < len(markup):
        start = markup.find("<", position)
        if start < 0:
            plain.append(markup[position:])
            break
        plain.append(markup[position:start])
        match = _TAG.match(markup, start)
        offset = len(markup[:start].encode("utf-8"))
        if not match:
            raise ValueError(f"Unexpected end tag or unescaped '<' at byte offset {offset}")
        closing, name, attributes = match.group(1), match.group(2).lower(), match.group(3)
        if name not in TAGS:
            raise ValueError(f'Unsupported start tag "{name}" at byte offset {offset}')
        if closing:
            if not stack or stack.pop() != name:
                raise ValueError(f'Unmatched end tag at byte offset {offset}, expected "</{name}>"')
        else:
            stack.append(name)
            if name == "a":
                href = _HREF.search(attributes)
                if href:
                    links.append(_decode(href.group(1) or href.group(2) or ""))
        position = match.end()
    if stack:
        raise ValueError(f"Can't find end tag corresponding to start tag {stack[-1]}")
    return _decode("".join(plain)), links


class TelegramFake(ScriptedFake):
    def __init__(self) -> None:
        super().__init__()
        self.serve("*", r"/bot(?P<token>[^/]*)/(?P<method>[A-Za-z]+)", self._api)

    def reset(self) -> None:
        super().reset()
        self.token = TOKEN
        self.bot = {
            "id": 7000001,
            "is_bot": True,
            "first_name": "Tin tức",
            "username": "tintuc_bot",
        }
        self.chats: dict[str, dict[str, Any]] = {
            "@tintuc_tayninh": CHANNEL,
            str(CHANNEL["id"]): CHANNEL,
        }
        self.admin = True  # is the bot an administrator of the chats?
        self.migrated: dict[str, int] = {}  # chat_id -> the supergroup it became
        self.broken_photos: set[str] = set()  # photo URLs Telegram cannot fetch
        self.next_id = 100
        self.can_delete = True  # the bot's "Delete messages" right
        self.undeletable: set[int] = set()  # message ids past Telegram's 48 hours (groups)
        self.uneditable: set[int] = set()  # message ids Telegram refuses to edit

    def message(self, message_id: int | str) -> dict[str, Any]:
        """The accepted post with this id, as it now stands."""
        [post] = [p for p in self.posts if p["message_id"] == int(message_id)]
        return post

    def _api(self, request: Request) -> Reply:
        assert request.match is not None
        if request.match["token"] != self.token:
            return error(401, "Unauthorized")
        methods = {
            "getme": self._get_me,
            "getchat": self._get_chat,
            "getchatmember": self._get_chat_member,
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "editmessagetext": self._edit_text,
            "editmessagecaption": self._edit_caption,
            "editmessagemedia": self._edit_media,
            "deletemessage": self._delete,
        }
        method = methods.get(request.match["method"].lower())
        if method is None:
            return error(404, "Not Found")
        return method(request.form())

    def _chat(self, fields: dict[str, str]) -> dict[str, Any] | Reply:
        chat_id = fields.get("chat_id", "")
        if chat_id in self.migrated:
            return error(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                migrate_to_chat_id=self.migrated[chat_id],
            )
        chat = self.chats.get(chat_id)
        if chat is None:
            return error(400, "Bad Request: chat not found")
        return chat

    def _get_me(self, fields: dict[str, str]) -> Reply:
        return Reply(200, {"ok": True, "result": self.bot})

    def _get_chat(self, fields: dict[str, str]) -> Reply:
        chat = self._chat(fields)
        return chat if isinstance(chat, Reply) else Reply(200, {"ok": True, "result": chat})

    def _get_chat_member(self, fields: dict[str, str]) -> Reply:
        chat = self._chat(fields)
        if isinstance(chat, Reply):
            return chat
        if self.admin:
            member = {"status": "administrator", "user": self.bot, "can_post_messages": True}
        else:
            member = {"status": "left", "user": self.bot}
        return Reply(200, {"ok": True, "result": member})

    def _target(self, fields: dict[str, str]) -> dict[str, Any] | Reply:
        chat = self._chat(fields)
        if isinstance(chat, Reply):
            return chat
        if not self.admin:
            return error(403, "Forbidden: bot is not a member of the channel chat")
        return chat

    def _parse(self, fields: dict[str, str], key: str) -> tuple[str, list[str]] | Reply:
        markup = fields.get(key, "")
        if fields.get("parse_mode", "").lower() != "html":
            return markup.strip(), []
        try:
            plain, links = parse_html(markup)
        except ValueError as exc:
            return error(400, f"Bad Request: can't parse entities: {exc}")
        return plain.strip(), links

    def _send_message(self, fields: dict[str, str]) -> Reply:
        chat = self._target(fields)
        if isinstance(chat, Reply):
            return chat
        parsed = self._parse(fields, "text")
        if isinstance(parsed, Reply):
            return parsed
        plain, links = parsed
        if not plain:
            return error(400, "Bad Request: message text is empty")
        if utf16(plain) > 4096:
            return error(400, "Bad Request: message is too long")
        return self._posted("sendMessage", chat, fields, plain, links, {"text": plain})

    def _send_photo(self, fields: dict[str, str]) -> Reply:
        chat = self._target(fields)
        if isinstance(chat, Reply):
            return chat
        photo = fields.get("photo", "")
        if not photo:
            return error(400, "Bad Request: there is no photo in the request")
        if photo in self.broken_photos or not photo.startswith(("http://", "https://")):
            return error(400, "Bad Request: wrong file identifier/HTTP URL specified")
        parsed = self._parse(fields, "caption")
        if isinstance(parsed, Reply):
            return parsed
        plain, links = parsed
        if utf16(plain) > 1024:
            return error(400, "Bad Request: message caption is too long")
        photo_sizes = [{"file_id": f"photo-{self.next_id}", "width": 1280, "height": 720}]
        return self._posted("sendPhoto", chat, fields, plain, links, {"caption": plain, "photo": photo_sizes})

    def _posted(
        self,
        method: str,
        chat: dict[str, Any],
        fields: dict[str, str],
        plain: str,
        links: list[str],
        content: dict[str, Any],
    ) -> Reply:
        self.next_id += 1
        now = int(time.time())
        self.accept(
            {
                **fields,
                "method": method,
                "plain": plain,
                "links": links,
                "message_id": self.next_id,
                "chat": chat["id"],
                "date": now,
            }
        )
        message = {
            "message_id": self.next_id,
            "sender_chat": chat,
            "chat": chat,
            "date": now,
            **content,
        }
        return Reply(200, {"ok": True, "result": message})

    # --- edits and deletions ---------------------------------------------------------------------

    def _find(self, fields: dict[str, str], verb: str) -> dict[str, Any] | Reply:
        chat = self._target(fields)
        if isinstance(chat, Reply):
            return chat
        try:
            message_id = int(fields.get("message_id", ""))
        except ValueError:
            return error(400, "Bad Request: message identifier is not specified")
        for post in self.posts:
            if post["message_id"] == message_id and post["chat"] == chat["id"] and not post.get("deleted"):
                return post
        return error(400, f"Bad Request: message to {verb} not found")

    def _edited(self, post: dict[str, Any], changes: dict[str, Any]) -> Reply:
        """Apply `changes` unless they change nothing (Telegram's 400), keeping the old version."""
        if post["message_id"] in self.uneditable:
            return error(400, "Bad Request: message can't be edited")
        if all(post.get(key) == value for key, value in changes.items()):
            return error(
                400,
                "Bad Request: message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message",
            )
        previous = {key: post.get(key) for key in changes}
        post.setdefault("edits", []).append(previous)
        post.update(changes)
        message: dict[str, Any] = {
            "message_id": post["message_id"],
            "chat": self.chats[str(post["chat"])],
            "date": post["date"],
            "edit_date": int(time.time()),
        }
        if post["method"] == "sendPhoto":
            message.update(caption=post["plain"], photo=[{"file_id": f"photo-{post['message_id']}"}])
        else:
            message["text"] = post["plain"]
        return Reply(200, {"ok": True, "result": message})

    def _edit_text(self, fields: dict[str, str]) -> Reply:
        post = self._find(fields, "edit")
        if isinstance(post, Reply):
            return post
        if post["method"] == "sendPhoto":
            return error(400, "Bad Request: there is no text in the message to edit")
        parsed = self._parse(fields, "text")
        if isinstance(parsed, Reply):
            return parsed
        plain, links = parsed
        if not plain:
            return error(400, "Bad Request: message text is empty")
        if utf16(plain) > 4096:
            return error(400, "Bad Request: message is too long")
        changes = {
            "text": fields.get("text", ""),
            "link_preview_options": fields.get("link_preview_options"),
            "plain": plain,
            "links": links,
        }
        return self._edited(post, changes)

    def _edit_caption(self, fields: dict[str, str]) -> Reply:
        post = self._find(fields, "edit")
        if isinstance(post, Reply):
            return post
        if post["method"] != "sendPhoto":
            return error(400, "Bad Request: there is no caption in the message to edit")
        parsed = self._parse(fields, "caption")
        if isinstance(parsed, Reply):
            return parsed
        plain, links = parsed
        if utf16(plain) > 1024:
            return error(400, "Bad Request: message caption is too long")
        return self._edited(post, {"caption": fields.get("caption", ""), "plain": plain, "links": links})

    def _edit_media(self, fields: dict[str, str]) -> Reply:
        post = self._find(fields, "edit")
        if isinstance(post, Reply):
            return post
        try:
            media = json.loads(fields.get("media", ""))
        except ValueError:
            return error(400, "Bad Request: can't parse InputMedia: Can't parse media JSON object")
        if not isinstance(media, dict) or media.get("type") != "photo":
            return error(400, "Bad Request: can't parse InputMedia: Media type must be specified")
        if post["method"] != "sendPhoto":
            return error(400, "Bad Request: message can't be edited")
        photo = str(media.get("media") or "")
        if photo in self.broken_photos or not photo.startswith(("http://", "https://")):
            return error(400, "Bad Request: wrong file identifier/HTTP URL specified")
        parsed = self._parse({"caption": str(media.get("caption") or ""), **_mode(media)}, "caption")
        if isinstance(parsed, Reply):
            return parsed
        plain, links = parsed
        if utf16(plain) > 1024:
            return error(400, "Bad Request: message caption is too long")
        changes = {"photo": photo, "caption": media.get("caption", ""), "plain": plain, "links": links}
        return self._edited(post, changes)

    def _delete(self, fields: dict[str, str]) -> Reply:
        post = self._find(fields, "delete")
        if isinstance(post, Reply):
            return post
        if not self.can_delete or post["message_id"] in self.undeletable:
            return error(400, "Bad Request: message can't be deleted")
        post["deleted"] = True
        return Reply(200, {"ok": True, "result": True})


def _mode(media: dict[str, Any]) -> dict[str, str]:
    return {"parse_mode": str(media["parse_mode"])} if media.get("parse_mode") else {}
