"""``callwatch demo`` (``run``) and its stand-ins (``fakes``): replay servers for the
sources, a fake Telegram Bot API, an SMTP sink and a webhook receiver, all on 127.0.0.1."""
