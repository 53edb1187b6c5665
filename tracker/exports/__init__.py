"""Exports of stored calls: what they read (``reading``: a profile's matched calls, feed
tokens), the formats (``formats``: iCalendar, CSV, JSON, Atom; pure), and the plain rows the
CLI prints and writes (``rows``)."""
