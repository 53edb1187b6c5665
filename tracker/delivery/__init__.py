"""Delivery: who is told what and when. Subscribers (``subscribers``), pure planning
(``planning``) and rendering (``render``, ``templates/``), the outbox (``outbox``), the
dispatcher that sends it exactly once (``dispatch``), and the operator alerts."""

#: the default of ``[alerts] summary_after`` (here, not in ``planning``, so that loading the
#: configuration does not load the matcher)
SUMMARY_AFTER = 5
#: the default of a subscriber's ``reminders``: days before each cut-off
REMINDER_DAYS = (30, 7, 1)
