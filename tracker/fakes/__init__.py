"""Local stand-ins for the outside world, on 127.0.0.1 only.

Replay servers for the sources, a fake Telegram Bot API, an SMTP sink and a webhook
receiver. Tests point the real scraper and channel code at them through the same settings a
user would change, and ``callwatch demo`` uses them to run a full cycle with no network.
"""
