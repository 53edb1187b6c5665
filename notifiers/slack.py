"""The Slack channel: a Slack incoming webhook, one URL per subscriber (``channels.slack``).

The body is Slack Block Kit derived from the generic document (``tracker/delivery/render.py``), with
``text`` as the notification fallback. It is POSTed by the webhook channel's code (the same
Standard Webhooks headers, destination checks and answers, ``notifiers/webhook.py``), and is
the same body a ``webhook`` subscriber with ``webhook_format: slack`` receives.
"""

from __future__ import annotations

from typing import Any

from notifiers.webhook import service_hook_plugin
from tracker.ports import Message


def _slack_escape(text: str) -> str:
    """Slack's escaping for any text it reads as mrkdwn, ``text`` included: without it a
    scraped ``<@U024BE7LH>``, ``<#C0000|general>`` or ``<!channel>`` is a real mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_url(url: str) -> str:
    """A URL for ``<url|title>``: a ``|`` would end the URL early and ``<``/``>`` the link
    (``safe_url`` already keeps those two out), so they are percent-encoded."""
    return url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")


SLACK_MAX_BLOCKS = 50


def slack_body(document: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook body (Block Kit, with ``text`` as the notification fallback).

    Every mrkdwn string is escaped, ``text`` too (Slack parses it for mentions and links);
    the header is ``plain_text``, which Slack shows as it is.
    """
    from tracker.delivery.render import clip, document_item_lines  # Jinja: only to render
    from tracker.delivery.wording import count

    lang = str(document.get("language", "en"))  # stored before messages had one: English

    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(document["subject"], 150)}}
    ]
    dropped = 0
    for section in document["sections"]:
        if document["kind"] == "digest":
            blocks.append({"type": "section", "text": {
                "type": "mrkdwn", "text": f"*{_slack_escape(section['title'])}*"}})
        for item in section["items"]:
            if len(blocks) >= SLACK_MAX_BLOCKS - 1:
                dropped += 1
                continue
            title = _slack_escape(item["title"])
            heading = f"*<{_slack_url(item['url'])}|{title}>*" if item.get("url") else f"*{title}*"
            body = "\n".join([heading, *(_slack_escape(line) for line in document_item_lines(item, lang))])
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": clip_block(body)}})
    if dropped:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": _slack_escape(count("summary.more", dropped, lang))}]})
    return {"text": _slack_escape(document["subject"]), "blocks": blocks}


def clip_block(text: str, limit: int = 3000) -> str:
    """Keep a Slack section within its 3000-character limit, lines intact."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(message: Message) -> dict[str, Any]:
    return slack_body(message.document)


PLUGIN = service_hook_plugin(
    "slack", "Slack incoming webhooks", render,
    "a Slack incoming-webhook URL (https://hooks.slack.com/services/…)",
)
