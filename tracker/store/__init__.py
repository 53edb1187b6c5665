"""The store: tables and migrations (``db``), the call store that records each run and its
typed history (``calls``), the rules that judge a run (``diff``, ``drift``), and the
scheduler's heartbeat."""
