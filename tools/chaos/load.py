"""The steady open-loop mix the faults are injected under, and what every request got.

Request *i* is due at ``start + i / rate`` whatever happened before (open loop: a stalled stack
does not slow the load down, and latency counts from the due time, so waiting for a free
connection is included). The mix, by weight: anonymous pages (``/``, an article, ``/popular``),
keyed API reads (the list, an article) and keyed API writes (``POST /api/v1/articles``, spread
over the suite's keys so that no key nears the write limit).

Clients keep connections alive and behave as browsers do when a kept-alive connection turns out
to have been closed by the server before any of the response came (the race every keep-alive
close has, and nginx closes idle client connections on each graceful reload): they send the
request again once on a new connection (RFC 9112 section 9.3.1; Chromium's
``ShouldResendRequest``). Those requests are counted (``resent``); a request that fails on a new
connection, or after a response began, is never sent again.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

#: (kind, weight): 80% reads, 20% writes.
MIX = (("home", 15), ("page", 20), ("popular", 10), ("api_list", 15), ("api_get", 20), ("write", 20))
#: The kinds that count a view of their article when they answer 200.
VIEWS = ("page", "api_get")
TIMEOUT = (3.05, 10)


@dataclass(frozen=True)
class Outcome:
    due: float  # monotonic seconds
    kind: str
    latency: float  # from the due time to the end of the response (or of the failure)
    status: int | None  # None: no response (connection error, timeout)
    error: str | None = None
    article_id: int | None = None  # the article read, or the one a write created
    refused: bool = False  # a write answered 503 problem+json with Retry-After (read-only mode)
    resent: bool = False  # a kept-alive connection was closed under it, so it was sent again
    #: When its (last) attempt was sent, monotonic: ``done - sent`` is the stack's answer time,
    #: without the generator's own lag (a promise about answering fast is judged on that).
    sent: float = 0.0
    request_id: str = ""  # its X-Request-ID (nginx passes it through and logs it, so does the app)

    @property
    def ok(self) -> bool:
        return self.status == (201 if self.kind == "write" else 200)

    @property
    def done(self) -> float:
        return self.due + self.latency

    @property
    def answer_s(self) -> float:
        """From sending to the end of the response (or of the failure)."""
        return self.done - (self.sent or self.due)


class MixedLoad:
    """Runs the mix in the background from start() to stop(); ``outcomes`` holds every answer."""

    def __init__(self, base_url: str, keys: list[str], article_ids: list[int], rate: float, seed: int) -> None:
        self.base_url = base_url
        self.keys = keys
        self.article_ids = article_ids
        self.rate = rate
        self.rng = random.Random(seed)
        self.outcomes: list[Outcome] = []
        self.created: list[tuple[int, str]] = []  # (article id, key) of acknowledged writes
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._local = threading.local()
        # Enough threads for 10 s of requests at the rate: a stall shows as latency, not as a queue.
        self._pool = ThreadPoolExecutor(max_workers=max(32, int(rate * 10)), thread_name_prefix="chaos-load")
        self._scheduler = threading.Thread(target=self._schedule, name="chaos-scheduler", daemon=True)
        self._kinds = [kind for kind, weight in MIX for _ in range(weight)]

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> list[Outcome]:
        self._stop.set()
        self._scheduler.join()
        self._pool.shutdown(wait=True)
        return self.outcomes

    def _schedule(self) -> None:
        start = time.monotonic() + 0.05
        i = 0
        while not self._stop.is_set():
            due = start + i / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            kind = self.rng.choice(self._kinds)
            self._pool.submit(self._one, due, kind, self.rng.choice(self.article_ids), self.keys[i % len(self.keys)])
            i += 1

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _one(self, due: float, kind: str, article_id: int, key: str) -> None:
        session = self._session()
        resent = False
        request_id = uuid.uuid4().hex
        while True:
            reused = reuses_connection(session, self.base_url)
            sent = time.monotonic()
            try:
                response = self._send(session, kind, article_id, key, request_id)
                break
            except requests.ConnectionError as exc:
                if reused and not resent and not isinstance(exc, requests.ConnectTimeout):
                    resent = True
                    continue
                failure = type(exc).__name__
            except requests.RequestException as exc:
                failure = type(exc).__name__
            self._record(
                Outcome(
                    due, kind, time.monotonic() - due, None, failure, resent=resent, sent=sent, request_id=request_id
                )
            )
            return
        latency = time.monotonic() - due
        refused = (
            kind == "write"
            and response.status_code == 503
            and response.headers.get("Content-Type", "").startswith("application/problem+json")
            and "Retry-After" in response.headers
        )
        read_id = article_id if kind in VIEWS else None
        if kind == "write" and response.status_code == 201:
            read_id = int(response.json()["id"])
            with self._lock:
                self.created.append((read_id, key))
        self._record(
            Outcome(due, kind, latency, response.status_code, None, read_id, refused, resent, sent, request_id)
        )

    def _send(
        self, session: requests.Session, kind: str, article_id: int, key: str, request_id: str
    ) -> requests.Response:
        session.headers["X-Request-ID"] = request_id  # one session per thread, one request at a time
        bearer = {"Authorization": f"Bearer {key}"}
        url = self.base_url
        if kind == "home":
            response = session.get(f"{url}/", timeout=TIMEOUT)
        elif kind == "page":
            response = session.get(f"{url}/articles/{article_id}", timeout=TIMEOUT)
        elif kind == "popular":
            response = session.get(f"{url}/popular", timeout=TIMEOUT)
        elif kind == "api_list":
            response = session.get(f"{url}/api/v1/articles", headers=bearer, timeout=TIMEOUT)
        elif kind == "api_get":
            response = session.get(f"{url}/api/v1/articles/{article_id}", headers=bearer, timeout=TIMEOUT)
        else:
            body = {"title": f"Chaos {uuid.uuid4().hex[:12]}", "body": "Written under fault injection."}
            response = session.post(f"{url}/api/v1/articles", json=body, headers=bearer, timeout=TIMEOUT)
        response.content  # noqa: B018 - read the whole body
        return response

    def _record(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)


def reuses_connection(session: requests.Session, url: str) -> bool:
    """The session's next request goes over a kept-alive connection (urllib3's pools are LIFO queues).

    The load's sessions only ever talk to ``url``, one request at a time.
    """
    manager = session.get_adapter(url).poolmanager  # type: ignore[attr-defined]
    for key in manager.pools.keys():  # noqa: SIM118 - the container cannot be iterated
        idle = manager.pools[key].pool.queue
        if idle and idle[-1] is not None:
            return True
    return False
