"""What `callwatch init DIR` writes: a starting config, one example profile, one subscriber.

The config's sections are rendered from the settings models (``tracker.settings_docs``):
each key with its help as a comment, at its default and commented out unless the starter
sets it, so the file cannot drift from what callwatch reads. The profile and the subscriber
are examples written by hand, with comments: a YAML file has no model to render help from.

Pure: :func:`starter_files` gives the files' relative paths and texts; the command writes
them, and refuses to overwrite any.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tracker.config import (
    DatabaseSettings,
    DigestSettings,
    LogSettings,
    NotifierSettings,
    ProfileDirectory,
    SubscriberDirectory,
    WebSettings,
)
from tracker.settings_docs import commented_section

PROFILE_NAME = "example-cluster"
SUBSCRIBER_NAME = "example-manager"
CONFIG = "callwatch.toml"
PROFILE = f"profiles/{PROFILE_NAME}.yaml"
SUBSCRIBER = f"subscribers/{SUBSCRIBER_NAME}.yaml"

CONFIG_HEADER = """\
# callwatch configuration, written by `callwatch init`. Every key callwatch knows, with its
# default, is in the packaged defaults (tracker/defaults.toml, or README "Configuration
# reference"); the main ones are below, commented out at their default unless set here.
#
# Use it: callwatch --config callwatch.toml profiles check   (or CALLWATCH_CONFIG=callwatch.toml)
#         callwatch --config callwatch.toml run --once        one cycle, then exit
#         callwatch --config callwatch.toml run               the daemon
# Any key can be overridden by an environment variable CALLWATCH_<SECTION>__<KEY>, e.g.
#   CALLWATCH_DATABASE__URL=postgresql://callwatch@localhost/callwatch
# Secrets never go in this file: CALLWATCH_TELEGRAM_TOKEN, CALLWATCH_SMTP_USERNAME,
# CALLWATCH_SMTP_PASSWORD, CALLWATCH_WEB_SECRET (32+ random characters) and the variable
# notifiers.webhook.secret_env names are read from the environment only."""

SOURCES_NOTE = """\

# Sources: every packaged source is on (interreg waits for its api_key). To turn one off or
# change how often it is read:
# [sources.eccp]
# enabled = false
# [sources.ft_portal]
# interval = "6h\""""

#: the keys the starter sets (the rest of each section is commented out at its default)
STARTER_VALUES: Mapping[str, Mapping[str, Any]] = {
    "database": {"url": "sqlite:///callwatch.db"},
    "profiles": {"directory": "profiles"},
    "subscribers": {"directory": "subscribers"},
    "web": {"listen": "127.0.0.1:8080"},
    "digests": {},
    "log": {},
    "notifiers.email": {},
}

PROFILE_TEXT = f"""\
# An example matching profile: which calls matter to one cluster. `callwatch profiles check`
# validates it (file, line and field for each problem); `callwatch match --profile
# {PROFILE_NAME}` shows what it matches among the stored calls, with the reasons.
# Rename it after your cluster and edit the query; README "Profiles" lists every field.
name: {PROFILE_NAME}
description: An example cluster - hydrogen, energy storage and fuel cells
# the query language: words and "quoted phrases", * at the end of a word, AND, OR, NOT,
# parentheses; it is matched against each call's title, summary and keywords
query: >-
  (hydrogen OR "fuel cell*" OR electroly* OR "energy storage")
  AND NOT aviation
# only these programmes (empty or left out: every programme)
programmes:
  - Horizon Europe
  - Single Market Programme
status: [open, forthcoming]
# calls closing sooner than min_days leave too little time to build a consortium
deadline: {{min_days: 14, max_days: 365}}
# a call must score at least this much (each matching term adds to the score)
min_score: 1
"""

SUBSCRIBER_TEXT = f"""\
# An example subscriber: who is told about the calls a profile matches, on which channels,
# and how often. `callwatch subscribers check` validates it. Rename it after the person or
# team; README "Subscribers" lists every field.
name: {SUBSCRIBER_NAME}
# the cluster this subscriber belongs to: the web app's page for it is /t/<tenant>/calls
tenant: example-cluster
timezone: Europe/Brussels       # digests, reminders and quiet hours follow this time zone
language: en
channels:
  email: manager@example.org    # needs [notifiers.email] host and sender in callwatch.toml
  # telegram: "123456789"       # the chat id the bot gives after /start
subscriptions:
  - profile: {PROFILE_NAME}
    mode: daily                 # instant, daily or weekly
reminders: [7, 1]               # days before each cut-off
"""


def _email_model() -> Any:
    return NotifierSettings.assembled().model_fields["email"].annotation


def starter_config() -> str:
    """The text of ``callwatch.toml``: the header, the main sections from their models."""
    models: dict[str, Any] = {
        "database": DatabaseSettings, "profiles": ProfileDirectory,
        "subscribers": SubscriberDirectory, "web": WebSettings, "digests": DigestSettings,
        "log": LogSettings, "notifiers.email": _email_model(),
    }
    lines = [CONFIG_HEADER]
    for path, model in models.items():
        lines += commented_section(model, path, STARTER_VALUES[path])
    return "\n".join(lines) + "\n" + SOURCES_NOTE + "\n"


def starter_files() -> dict[str, str]:
    """Each file ``callwatch init`` writes, by its path relative to the directory."""
    return {CONFIG: starter_config(), PROFILE: PROFILE_TEXT, SUBSCRIBER: SUBSCRIBER_TEXT}
