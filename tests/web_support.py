"""A store for the web app's tests: two tenants, their subscribers, matched calls, a history.

Written in the real shape: calls go in through ``Store.record_run`` (two runs, the second
moving a deadline, so there is a typed history), matches through ``RulesStore``,
subscribers through ``sync_subscribers``, as a cycle writes them.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from starlette.types import ASGIApp

from tests.factories import make_call
from tracker.delivery.outbox import sync_subscribers
from tracker.delivery.subscribers import Subscriber
from tracker.models import CallRecord, CallStatus, ScrapeResult
from tracker.rules.matcher import Match
from tracker.rules.store import RulesStore
from tracker.store.calls import Store
from tracker.web.serve import server

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FIRST_RUN = NOW - timedelta(days=10)
SECOND_RUN = NOW - timedelta(days=2)
TENANT = "hydrogen-valley"
OTHER_TENANT = "alentejo-agrifood"
HOSTILE_TITLE = '<script>alert(1)</script> Hydrogen "><img src=x onerror=alert(2)> valleys'
#: open calls beyond the named ones, so the tenant's list has two pages
FILLERS = 30


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=17, tzinfo=UTC)


def tenant_calls(moved: bool) -> list[CallRecord]:
    """The calls of both tenants as one ft_portal run; ``moved``: H2-SOON's deadline moved."""
    calls = [
        make_call("H2-SOON", title="Electrolyser stacks for steel plants",
                  deadlines=(_at("2026-12-01" if moved else "2026-12-20"),)),
        make_call("H2-HOSTILE", title=HOSTILE_TITLE, programme="Single Market Programme",
                  summary='Bring <b>hydrogen</b> "><img src=x onerror=alert(3)> to SMEs.',
                  url="javascript:alert(4)", deadlines=(_at("2027-02-01"),),
                  documents=({"title": '<img src=x onerror=alert(5)>',
                              "url": "https://example.invalid/doc.pdf"},)),
        make_call("H2-CLOSED", title="Fuel cells for buses (closed)", status=CallStatus.CLOSED,
                  opening_date=_at("2026-01-10"), deadlines=(_at("2026-10-01"),)),
        make_call("H2-LATER", title="Hydrogen valleys, second wave", status=CallStatus.FORTHCOMING,
                  programme="Innovation Fund", opening_date=_at("2027-01-10"),
                  deadlines=(_at("2027-05-01"),)),
        make_call("H2-DISMISSED", title="Hydrogen aviation (dismissed)",
                  deadlines=(_at("2027-01-15"),)),
        make_call("AGRI-1", title="Irrigation for olive groves", programme="Interreg",
                  deadlines=(_at("2027-01-20"),)),
    ]
    calls += [make_call(f"H2-FILL-{n:02d}", title=f"Hydrogen storage topic {n:02d}",
                        deadlines=(_at("2027-03-01") + timedelta(days=n),))
              for n in range(FILLERS)]
    return calls


def populate(engine: Engine) -> None:
    """Two tenants (``hydrogen-valley`` with profile h2, ``alentejo-agrifood`` with agri),
    a subscriber without a tenant, and the calls each profile matched."""
    store = Store(engine)
    for started, moved in ((FIRST_RUN, False), (SECOND_RUN, True)):
        store.record_run("ft_portal", ScrapeResult(records=tenant_calls(moved)),
                         started_at=started, now=started)
    sync_subscribers(engine, [
        Subscriber.model_validate({"name": "ana", "tenant": TENANT,
                                   "channels": {"email": "ana@example.org"},
                                   "subscriptions": [{"profile": "h2"}]}),
        Subscriber.model_validate({"name": "rita", "tenant": OTHER_TENANT,
                                   "channels": {"email": "rita@example.org"},
                                   "subscriptions": [{"profile": "agri"}]}),
        Subscriber.model_validate({"name": "lars", "channels": {"email": "lars@example.org"},
                                   "subscriptions": [{"profile": "h2"}]}),
    ], FIRST_RUN)
    rules = RulesStore(engine)
    matches = [Match(profile="agri" if call.native_id.startswith("AGRI") else "h2",
                     call_id=call.id, score=2, reasons=('keyword "hydrogen" in title',),
                     call=call, next_deadline=call.deadlines[-1])
               for call in tenant_calls(moved=True)]
    rules.record_matches(matches, SECOND_RUN)
    rules.dismiss("h2", "ft_portal:H2-DISMISSED", SECOND_RUN)


@contextmanager
def running(app: ASGIApp, sock: socket.socket) -> Iterator[str]:
    """``app`` under uvicorn in a thread on ``sock`` (bound on 127.0.0.1), until the block
    ends; its ``http://127.0.0.1:PORT``."""
    uvicorn = server(app)
    thread = threading.Thread(target=uvicorn.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uvicorn.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uvicorn.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        uvicorn.should_exit = True
        thread.join(timeout=15)
        sock.close()
