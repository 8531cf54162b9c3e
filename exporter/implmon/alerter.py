"""The alert stage: analyzer findings to Alertmanager's v2 API, the way Prometheus sends alerts.

Every cycle the monitor hands :meth:`AlertSender.process` the findings that are active now.
The sender keeps the state Prometheus's rule manager keeps for each alert:

- a finding seen for the first time is sent at once, with ``startsAt`` = now; that ``startsAt``
  stays the same on every later send of the same alert;
- while it stays active it is re-sent every ``resend_delay``, each time with ``endsAt`` =
  send time + 4 * max(resend delay, monitor interval), so Alertmanager resolves it by itself if
  the exporter dies (Prometheus's ``ValidUntil``);
- when it disappears it is sent once more with ``endsAt`` = now: resolved;
- the label set is the same on every send: ``alertname``, ``severity``, ``monitoring_type``,
  the finding's labels and the config's ``external_labels`` (in that order of precedence). A finding
  whose severity changes is a different alert to Alertmanager: the old one is resolved.
- annotations ``summary``, ``description`` and ``runbook_url`` (the finding's ``runbook``, or
  the ``docs/runbooks.md`` anchor of its alertname); ``generatorURL`` is the exporter's URL.

Each configured Alertmanager (an HA pair is two) gets every alert through its own bounded
queue and worker, so one unreachable Alertmanager never delays another, and
:meth:`~AlertSender.process` never waits for the network. A queued notification for an alert
that is already queued replaces the older one in place (during an outage the queue holds each
alert once, not once per resend). A failed POST is retried with exponential backoff until it
succeeds; alerts still active are sent with a fresh ``endsAt`` when it does. When a queue is
full the oldest notification makes room: that drop is counted in
``implmon_alerts_dropped_total{reason="queue_full"}`` and logged, never silent. A 4xx answer
(other than 429) means Alertmanager will never accept the batch: it is counted as
``reason="rejected"`` and logged, and not retried.

>>> from implmon.config import AlertingConfig
>>> sender = AlertSender(AlertingConfig(alertmanagers=[{"url": "http://127.0.0.1:9093"}]))
>>> [s.metric for s in sender.samples()][:2]
['implmon_alertmanagers_discovered', 'implmon_alerts_sent_total']
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from implmon.component import RUNBOOKS_URL, Finding
from implmon.config import AlertingConfig, AlertmanagerConfig, Config, read_secret
from implmon.metrics import Sample

__all__ = ["RUNBOOK_BASE", "AlertSender", "Notification"]

log = logging.getLogger(__name__)

#: Where runbooks live; an alert without its own runbook links ``#<alertname lowercased>``.
RUNBOOK_BASE = RUNBOOKS_URL
#: Alerts per POST, as Prometheus's notifier (maxBatchSize).
MAX_BATCH = 64
#: Prometheus sends ``endsAt`` = now + 4 * max(resend delay, evaluation interval).
VALIDITY_FACTOR = 4

LabelSet = tuple[tuple[str, str], ...]


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _describe(labels: LabelSet) -> str:
    """``alertname{label="value", ...}`` for log lines."""
    names = dict(labels)
    alertname = names.pop("alertname", "?")
    return alertname + "{" + ", ".join(f'{k}="{v}"' for k, v in names.items()) + "}"


@dataclass(frozen=True, slots=True)
class Notification:
    """One alert as queued for an Alertmanager. ``ends_at`` is None while the alert is active:
    it is computed at send time, so an alert delivered late is not already expired."""

    labels: LabelSet
    annotations: Mapping[str, str]
    starts_at: float
    ends_at: float | None
    generator_url: str

    def payload(self, now: float, valid_for: float) -> dict[str, Any]:
        """The Alertmanager v2 ``postableAlert`` for this notification, sent at ``now``."""
        ends_at = self.ends_at if self.ends_at is not None else now + valid_for
        return {
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": _rfc3339(self.starts_at),
            "endsAt": _rfc3339(ends_at),
            "generatorURL": self.generator_url,
        }


@dataclass(slots=True)
class _Active:
    """What the sender remembers about an alert it has sent and not yet resolved."""

    finding: Finding
    starts_at: float
    last_sent: float


@dataclass(slots=True)
class _Target:
    """One Alertmanager: its queue, worker and counters."""

    config: AlertmanagerConfig
    capacity: int
    queue: OrderedDict[LabelSet, Notification] = field(default_factory=OrderedDict)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    worker: asyncio.Task[None] | None = None
    sent: int = 0
    errors: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: {"queue_full": 0, "rejected": 0})
    failing: bool = False
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def name(self) -> str:
        return self.config.url

    @property
    def endpoint(self) -> str:
        return self.config.url.rstrip("/") + "/api/v2/alerts"

    def put(self, notifications: Sequence[Notification]) -> None:
        """Queue ``notifications``; a queued one for the same alert is replaced in place. When
        the queue overflows, the oldest make room: counted and logged once per call."""
        for notification in notifications:
            self.queue[notification.labels] = notification
        overflow = len(self.queue) - self.capacity
        if overflow > 0:
            dropped = [self.queue.popitem(last=False)[0] for _ in range(overflow)]
            self.dropped["queue_full"] += overflow
            log.warning(
                "alert queue for Alertmanager %s is full (capacity %d): dropped %d oldest "
                "notification(s): %s",
                self.name,
                self.capacity,
                overflow,
                "; ".join(_describe(labels) for labels in dropped[:10]),
            )
        if notifications:
            self.idle.clear()
            self.wakeup.set()

    def take(self, limit: int) -> list[Notification]:
        batch: list[Notification] = []
        while self.queue and len(batch) < limit:
            batch.append(self.queue.popitem(last=False)[1])
        return batch

    def requeue(self, batch: Sequence[Notification]) -> None:
        """Put a failed batch back at the front, unless a newer notification of the same
        alert arrived meanwhile (the newer one wins)."""
        for notification in reversed(batch):
            if notification.labels not in self.queue:
                self.queue[notification.labels] = notification
                self.queue.move_to_end(notification.labels, last=False)
        overflow = len(self.queue) - self.capacity
        if overflow > 0:
            # As in put(): the front holds the oldest notifications; they make room.
            for _ in range(overflow):
                self.queue.popitem(last=False)
            self.dropped["queue_full"] += overflow
            log.warning(
                "alert queue for Alertmanager %s is full (capacity %d): dropped %d oldest "
                "notification(s) while retrying",
                self.name,
                self.capacity,
                overflow,
            )


class AlertSender:
    """The exporter's alert stage (an :class:`implmon.component.AlertSink`).

    ``interval`` is the monitor interval (it bounds ``endsAt`` as the evaluation interval does
    in Prometheus); ``external_url`` is the exporter's URL for ``generatorURL`` when the
    alerting config has none. ``backoff_initial``/``backoff_max`` bound the retry delay while
    an Alertmanager is unreachable; ``clock`` is for tests.

    >>> import asyncio
    >>> from implmon.component import Finding, MonitoringType, Severity
    >>> from implmon.config import AlertingConfig
    >>> sender = AlertSender(AlertingConfig())  # no Alertmanager configured: a no-op sink
    >>> asyncio.run(sender.process([Finding("X", Severity.WARNING, MonitoringType.SYSTEM,
    ...                                     "s", "d")]))
    >>> sender.active_alerts
    1
    """

    def __init__(
        self,
        config: AlertingConfig,
        *,
        interval: float = 0.0,
        external_url: str | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.resend_delay = config.resend_delay
        self.valid_for = VALIDITY_FACTOR * max(config.resend_delay, interval)
        base = config.external_url or external_url or ""
        self.generator_url = base.rstrip("/") + "/" if base else ""
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.clock = clock
        self._targets = [_Target(am, config.queue_capacity) for am in config.alertmanagers]
        for target in self._targets:
            target.idle.set()
        self._active: dict[LabelSet, _Active] = {}
        self._session: aiohttp.ClientSession | None = None
        self._started = False

    @classmethod
    def from_config(cls, config: Config, *, listen: tuple[str, int] | None = None) -> AlertSender:
        """The sender for a whole exporter config: its interval, and for ``generatorURL`` its
        ``external_url`` or else the listen address (the host's name if it listens on all
        interfaces)."""
        external_url = config.external_url
        if external_url is None and listen is not None:
            host, port = listen
            if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding it
                host = socket.getfqdn()
            external_url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
        return cls(config.alerting, interval=config.interval, external_url=external_url)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP session and start one worker per Alertmanager."""
        if self._started:
            return
        self._started = True
        self._session = aiohttp.ClientSession()
        for target in self._targets:
            target.worker = asyncio.create_task(
                self._work(target), name=f"alert sender {target.name}"
            )

    async def close(self, drain_timeout: float = 2.0) -> None:
        """Give queued notifications up to ``drain_timeout`` seconds to go out, then stop.

        Active alerts are not resolved: like Prometheus on shutdown, the exporter leaves them
        to expire at their ``endsAt`` (or to be re-sent by its successor)."""
        if not self._started:
            return
        pending = [t.idle.wait() for t in self._targets if not t.idle.is_set()]
        if pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*pending), drain_timeout)
        for target in self._targets:
            if target.worker is not None:
                target.worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await target.worker
                target.worker = None
            if target.queue:
                log.warning(
                    "alert sender for Alertmanager %s stopped with %d notification(s) unsent",
                    target.name,
                    len(target.queue),
                )
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._started = False

    async def reconfigure(self, config: Config) -> None:
        """Apply a reloaded exporter config. Alertmanagers still configured identically keep
        their queue, worker and counters; removed ones are stopped (unsent notifications are
        logged with their count); new ones start empty and receive every active alert at the
        next cycle. The firing alerts
        (and their ``startsAt``) are kept."""
        alerting = config.alerting
        self.config = alerting
        self.resend_delay = alerting.resend_delay
        self.valid_for = VALIDITY_FACTOR * max(alerting.resend_delay, config.interval)
        base = alerting.external_url or config.external_url or self.generator_url
        self.generator_url = base.rstrip("/") + "/" if base else ""
        old = {target.config: target for target in self._targets}
        targets: list[_Target] = []
        added = False
        for am in alerting.alertmanagers:
            target = old.pop(am, None)
            if target is None:
                added = True
                target = _Target(am, alerting.queue_capacity)
                target.idle.set()
                if self._started:
                    target.worker = asyncio.create_task(
                        self._work(target), name=f"alert sender {target.name}"
                    )
            target.capacity = alerting.queue_capacity
            targets.append(target)
        for target in old.values():
            if target.worker is not None:
                target.worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await target.worker
            if target.queue:
                log.warning(
                    "Alertmanager %s removed from the config with %d notification(s) unsent",
                    target.name,
                    len(target.queue),
                )
        self._targets = targets
        # A new Alertmanager learns of the alerts already firing without waiting a resend.
        if added:
            for state in self._active.values():
                state.last_sent = -1.0

    # --- the AlertSink protocol ------------------------------------------------------------

    @property
    def active_alerts(self) -> int:
        """Alerts currently firing (sent and not yet resolved)."""
        return len(self._active)

    def labels_of(self, finding: Finding) -> LabelSet:
        """The label set Alertmanager sees for ``finding`` (sorted, stable)."""
        labels = {
            **self.config.external_labels,
            **finding.labels,
            "alertname": finding.alertname,
            "severity": finding.severity.value,
            "monitoring_type": finding.monitoring_type.value,
        }
        return tuple(sorted(labels.items()))

    def annotations_of(self, finding: Finding) -> dict[str, str]:
        return {
            "summary": finding.summary,
            "description": finding.description,
            "runbook_url": finding.runbook_url,
        }

    async def process(self, findings: Sequence[Finding]) -> None:
        """Queue what needs sending this cycle; returns at once (delivery is in the background).

        New alerts and resolutions go out now; alerts still active are re-sent once
        ``resend_delay`` has passed since their last send."""
        now = self.clock()
        current: dict[LabelSet, Finding] = {}
        for finding in findings:
            current[self.labels_of(finding)] = finding
        outgoing: list[Notification] = []
        for labels, finding in current.items():
            state = self._active.get(labels)
            if state is None:
                state = self._active[labels] = _Active(finding, starts_at=now, last_sent=-1.0)
            state.finding = finding
            if state.last_sent < 0 or now - state.last_sent >= self.resend_delay:
                state.last_sent = now
                outgoing.append(self._notification(labels, state, ends_at=None))
        for labels in [labels for labels in self._active if labels not in current]:
            state = self._active.pop(labels)
            outgoing.append(self._notification(labels, state, ends_at=now))
        for target in self._targets:
            target.put(outgoing)

    def _notification(
        self, labels: LabelSet, state: _Active, ends_at: float | None
    ) -> Notification:
        return Notification(
            labels=labels,
            annotations=self.annotations_of(state.finding),
            starts_at=state.starts_at,
            ends_at=ends_at,
            generator_url=self.generator_url,
        )

    def samples(self) -> list[Sample]:
        """The stage's own figures, for every configured Alertmanager (zeros included, so
        rate() works from the first scrape)."""
        out = [Sample("implmon_alertmanagers_discovered", {}, float(len(self._targets)))]
        for target in self._targets:
            am = {"alertmanager": target.name}
            out += [
                Sample("implmon_alerts_sent_total", am, float(target.sent)),
                Sample("implmon_alerts_send_errors_total", am, float(target.errors)),
                Sample("implmon_alert_queue_length", am, float(len(target.queue))),
                Sample("implmon_alert_queue_capacity", am, float(target.capacity)),
            ]
            for reason, count in sorted(target.dropped.items()):
                out.append(
                    Sample("implmon_alerts_dropped_total", {**am, "reason": reason}, float(count))
                )
        return out

    # --- delivery ----------------------------------------------------------------------------

    async def _work(self, target: _Target) -> None:
        """Send ``target``'s queue in batches forever; back off while it fails."""
        backoff = self.backoff_initial
        while True:
            if not target.queue:
                target.idle.set()
                target.wakeup.clear()
                await target.wakeup.wait()
                continue
            batch = target.take(MAX_BATCH)
            outcome = await self._post(target, batch)
            if outcome == "ok":
                target.sent += len(batch)
                backoff = self.backoff_initial
                if target.failing:
                    target.failing = False
                    log.info("Alertmanager %s accepts alerts again", target.name)
                continue
            target.errors += len(batch)
            if outcome == "rejected":
                target.dropped["rejected"] += len(batch)
                continue
            target.requeue(batch)
            # Full jitter keeps an HA pair of exporters from retrying in lockstep.
            await asyncio.sleep(backoff * (0.5 + random.random() / 2))  # noqa: S311 - not crypto
            backoff = min(backoff * 2, self.backoff_max)

    async def _post(self, target: _Target, batch: Sequence[Notification]) -> str:
        """POST one batch; "ok", "retry" (worth trying again) or "rejected" (never will be)."""
        assert self._session is not None
        now = self.clock()
        body = json.dumps([n.payload(now, self.valid_for) for n in batch])
        headers = {"Content-Type": "application/json"}
        try:
            token = read_secret(target.config.bearer_token)
        except OSError as exc:
            self._failed(target, len(batch), f"cannot read its bearer token: {exc}")
            return "retry"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            async with self._session.post(
                target.endpoint,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=target.config.timeout),
            ) as response:
                if 200 <= response.status < 300:
                    return "ok"
                detail = (await response.text())[:200].strip()
                message = f"HTTP {response.status}: {detail}"
                if 400 <= response.status < 500 and response.status != 429:
                    log.error(
                        "Alertmanager %s rejected %d alert(s), not retrying: %s",
                        target.name,
                        len(batch),
                        message,
                    )
                    return "rejected"
                self._failed(target, len(batch), message)
                return "retry"
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._failed(target, len(batch), f"{type(exc).__name__}: {exc}".rstrip(": "))
            return "retry"

    def _failed(self, target: _Target, count: int, reason: str) -> None:
        # Logged when delivery starts failing, not on every retry; the metric counts each.
        if not target.failing:
            target.failing = True
            log.warning(
                "cannot send %d alert(s) to Alertmanager %s (will retry with backoff): %s",
                count,
                target.name,
                reason,
            )
