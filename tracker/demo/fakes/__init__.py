"""Local stand-ins for the outside world, on 127.0.0.1 only.

Replay servers for the sources, a fake Telegram Bot API, an SMTP sink and a webhook
receiver. Tests point the real scraper and channel code at them through the same settings a
user would change, and ``callwatch demo`` uses them to run a full cycle with no network.
"""

from pathlib import Path

#: The source pages the replay servers serve, one folder per source: a few real recordings,
#: most written in the real shape (tests/fixtures/README.md lists which). They ship in
#: the package (``callwatch demo`` runs from a plain install) and are the only copy: the
#: scraper tests read them here too.
RECORDINGS = Path(__file__).parent / "recordings"
