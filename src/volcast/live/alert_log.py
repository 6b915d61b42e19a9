"""The alert log: every firing and resolution, their acknowledgements and deliveries, and the
rules made through the API, kept in the candle store's DuckDB file.

Why the same file: the dashboard, ``/api/alerts`` and a restarted service read one source of
truth, and a firing is committed (so survives a kill) before it is delivered. The tables are
made on the first write; a store that never had an alert reads as an empty log, read-only
opens included. Every call is one short-lived connection of the store, so the log shares the
file with other processes as candles do.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from volcast.config import AlertRule
from volcast.data.store import CandleStore
from volcast.errors import NotFound
from volcast.live.alerts import Event

_DDL = """
CREATE SEQUENCE IF NOT EXISTS alert_event_ids;
CREATE TABLE IF NOT EXISTS alert_events (
    id BIGINT PRIMARY KEY DEFAULT nextval('alert_event_ids'),
    rule VARCHAR NOT NULL, target VARCHAR NOT NULL, kind VARCHAR NOT NULL,
    state VARCHAR NOT NULL CHECK (state IN ('firing', 'resolved')),
    value DOUBLE, threshold DOUBLE NOT NULL, message VARCHAR NOT NULL, at_ms BIGINT NOT NULL,
    episode VARCHAR NOT NULL, acked_at_ms BIGINT, delivered_at_ms BIGINT,
    attempts INTEGER NOT NULL DEFAULT 0, delivery_error VARCHAR);
CREATE TABLE IF NOT EXISTS alert_rules (name VARCHAR PRIMARY KEY, rule VARCHAR NOT NULL);
"""
_FIELDS = ("id", "rule", "target", "kind", "state", "value", "threshold", "message", "at_ms",
           "episode", "acked_at_ms", "delivered_at_ms", "attempts", "delivery_error")
_COLUMNS = ", ".join(_FIELDS)
_OPEN = ("state = 'firing' AND NOT EXISTS (SELECT 1 FROM alert_events r WHERE r.state = "
         "'resolved' AND r.episode = alert_events.episode)")
"""A firing whose episode has no resolution yet."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class AlertLog:
    """Alert events and API-made rules in ``store``'s file."""

    def __init__(self, store: CandleStore) -> None:
        self.store = store

    @contextmanager
    def _write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A transaction on the store, with the log's tables made if they are missing."""
        with self.store.transaction() as con:
            con.execute(_DDL)
            yield con

    def _read(self, query: str, args: list[object], table: str = "alert_events"
              ) -> list[tuple]:
        """Rows of a query, or none when the store has no such table yet."""
        with self.store.connection() as con:
            known = con.execute("SELECT count(*) FROM information_schema.tables WHERE "
                                "table_schema = 'main' AND table_name = ?", [table]
                                ).fetchall()[0][0]
            return con.execute(query, args).fetchall() if known else []

    def record(self, event: Event) -> int:
        """Keep an event (its own id, if any, is ignored); returns the id it was given."""
        with self._write() as con:
            return int(con.execute(
                f"INSERT INTO alert_events ({_COLUMNS}) VALUES (DEFAULT, "
                f"{', '.join('?' * (len(_FIELDS) - 1))}) RETURNING id",
                [getattr(event, name) for name in _FIELDS[1:]]).fetchall()[0][0])

    def events(self, open_only: bool = False, limit: int = 100) -> list[Event]:
        """The newest ``limit`` events, newest first; ``open_only``: the firings of episodes
        not resolved yet."""
        where = f"WHERE {_OPEN}" if open_only else ""
        rows = self._read(f"SELECT {_COLUMNS} FROM alert_events {where} "
                          "ORDER BY at_ms DESC, id DESC LIMIT ?", [limit])
        return [_event(row) for row in rows]

    def event(self, event_id: int) -> Event:
        rows = self._read(f"SELECT {_COLUMNS} FROM alert_events WHERE id = ?", [event_id])
        if not rows:
            raise NotFound(f"no alert event {event_id}")
        return _event(rows[0])

    def open_episodes(self) -> list[Event]:
        """Every open episode's firing, oldest first: what ``Evaluator.restore`` takes up."""
        rows = self._read(f"SELECT {_COLUMNS} FROM alert_events WHERE {_OPEN} "
                          "ORDER BY at_ms, id", [])
        return [_event(row) for row in rows]

    def pending(self) -> list[Event]:
        """Events with no delivery outcome recorded (the service stopped first, or their rule
        has no webhook), oldest first: a restarted service hands those whose rule has a
        webhook to its notifier again."""
        rows = self._read(f"SELECT {_COLUMNS} FROM alert_events WHERE delivered_at_ms IS NULL "
                          "AND delivery_error IS NULL ORDER BY at_ms, id", [])
        return [_event(row) for row in rows]

    def acknowledge(self, event_id: int, at_ms: int | None = None) -> Event:
        """Mark an event seen by a person; a second acknowledgement keeps the first time."""
        with self._write() as con:
            rows = con.execute(
                "UPDATE alert_events SET acked_at_ms = coalesce(acked_at_ms, ?) WHERE id = ? "
                f"RETURNING {_COLUMNS}", [now_ms() if at_ms is None else at_ms, event_id]
            ).fetchall()
        if not rows:
            raise NotFound(f"no alert event {event_id}")
        return _event(rows[0])

    def mark_delivered(self, event_id: int, attempts: int, error: str | None = None,
                       at_ms: int | None = None) -> None:
        """Record a delivery's outcome: delivered (``error`` None) after ``attempts`` tries, or
        given up with ``error``."""
        delivered = None if error is not None else (now_ms() if at_ms is None else at_ms)
        with self._write() as con:
            con.execute("UPDATE alert_events SET delivered_at_ms = ?, attempts = ?, "
                        "delivery_error = ? WHERE id = ?",
                        [delivered, attempts, error, event_id])

    def rules(self) -> list[AlertRule]:
        """The rules made through the API, by name."""
        rows = self._read("SELECT rule FROM alert_rules ORDER BY name", [], "alert_rules")
        return [AlertRule.model_validate_json(text) for (text,) in rows]

    def save_rule(self, rule: AlertRule) -> None:
        """Add a rule, or replace the one of the same name."""
        with self._write() as con:
            con.execute("INSERT OR REPLACE INTO alert_rules VALUES (?, ?)",
                        [rule.name, rule.model_dump_json()])

    def delete_rule(self, name: str) -> AlertRule:
        """Remove an API-made rule; returns it (its open episodes are the caller's to resolve,
        ``Evaluator.forget``)."""
        with self._write() as con:
            rows = con.execute("DELETE FROM alert_rules WHERE name = ? RETURNING rule",
                               [name]).fetchall()
        if not rows:
            raise NotFound(f"no alert rule '{name}' made through the API")
        return AlertRule.model_validate_json(rows[0][0])


def _event(row: tuple) -> Event:
    return Event(**dict(zip(_FIELDS, row, strict=True)))
