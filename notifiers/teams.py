"""The Microsoft Teams channel: a Teams incoming webhook or Workflows URL per subscriber
(``channels.teams``).

The body carries one Adaptive Card derived from the generic document (``tracker/delivery/render.py``).
It is POSTed by the webhook channel's code (``notifiers/webhook.py``), and is the same body a
``webhook`` subscriber with ``webhook_format: teams`` receives.
"""

from __future__ import annotations

import re
from typing import Any

from notifiers.webhook import service_hook_plugin
from tracker.ports import Message


def _teams_escape(text: str) -> str:
    """Adaptive Card text is Markdown: neutralise link and emphasis syntax in scraped text."""
    return re.sub(r"([\\`*_\[\]()#>~|])", r"\\\1", text)


def teams_body(document: dict[str, Any]) -> dict[str, Any]:
    """A Microsoft Teams (Workflows / incoming webhook) body carrying one Adaptive Card."""
    from tracker.delivery.render import document_item_lines  # Jinja: only to render

    lang = str(document.get("language", "en"))  # stored before messages had one: English

    body: list[dict[str, Any]] = [{
        "type": "TextBlock", "text": _teams_escape(document["subject"]), "weight": "Bolder",
        "size": "Medium", "wrap": True}]
    for section in document["sections"]:
        if document["kind"] == "digest":
            body.append({"type": "TextBlock", "text": _teams_escape(section["title"]),
                         "weight": "Bolder", "separator": True, "wrap": True})
        for item in section["items"]:
            container: dict[str, Any] = {"type": "Container", "separator": True, "items": [
                {"type": "TextBlock", "text": _teams_escape(item["title"]), "weight": "Bolder",
                 "wrap": True},
                *({"type": "TextBlock", "text": _teams_escape(line), "wrap": True, "spacing": "None"}
                  for line in document_item_lines(item, lang)),
            ]}
            if item.get("url"):
                container["selectAction"] = {"type": "Action.OpenUrl", "url": item["url"]}
            body.append(container)
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard", "version": "1.4", "body": body}
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
         "content": card}]}


def render(message: Message) -> dict[str, Any]:
    return teams_body(message.document)


PLUGIN = service_hook_plugin(
    "teams", "Microsoft Teams incoming webhooks", render,
    "a Microsoft Teams incoming-webhook or Workflows URL",
)
