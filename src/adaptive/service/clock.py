"""Time the server enforces.

The rule (documented in the README, "Exam day"):

- A session's time limit is the design's ``stopping.time_limit`` times the candidate's
  accommodation (``time_multiplier`` of the eligibility), plus any proctor extensions.
- Time used = the seconds charged to the stored answers (each: from presenting the item to
  receiving its answer, measured on the server) + the seconds the item on screen has been up.
  Only committed timestamps count; the candidate's device clock is never used.
- Not charged: a proctor pause (the item's presentation time moves forward by the pause), and a
  server outage: every server process writes a heartbeat every ``HEARTBEAT_SECONDS``; a server
  that starts after all heartbeats went stale moves the presentation time of every running
  session forward by the outage (from the last heartbeat to the restart), and audits it.
- Once the remaining time is 0 no item is served: the next request of the session ends it by
  the design's run-out-of-time rule, and an answer that arrives late is refused (409) and audited.
"""

from __future__ import annotations

import threading

from .parts import DeliveryParts

__all__ = ["HEARTBEAT_SECONDS", "Clock"]

#: seconds between two heartbeats of a server process
HEARTBEAT_SECONDS = 5.0


class Clock(DeliveryParts):
    """The time-keeping part of :class:`~adaptive.service.delivery.Delivery` (a mixin over its store and clock)."""

    def remaining(self, row: dict, now: float | None = None) -> float | None:
        """Seconds left of the session in ``row`` (None without a time limit); negative when overdue."""
        if row.get("time_limit") is None:
            return None
        now = self.clock() if now is None else now
        end = row["paused_at"] if row.get("paused_at") is not None else now
        on_screen = max(0.0, float(end) - float(row["presented_at"] or end)) if row.get("pending_item") else 0.0
        return float(row["time_limit"]) - float(row.get("elapsed") or 0.0) - on_screen

    def beat(self) -> None:
        """Record that a server is up now (the outage rule's evidence)."""
        with self.store.transaction() as tx:
            if tx.run("UPDATE heartbeats SET at = ? WHERE name = 'service'", (self.clock(),)) == 0:
                tx.run("INSERT INTO heartbeats (name, at) VALUES ('service', ?)", (self.clock(),))

    def recover_outage(self, grace: float = 2 * HEARTBEAT_SECONDS) -> float:
        """At server start: when every heartbeat is older than ``grace`` seconds, credit the outage (last heartbeat
        to now) to every running, unpaused session; returns the seconds credited (0 when no outage)."""
        now = self.clock()
        with self.store.transaction() as tx:
            hb = tx.one("SELECT at FROM heartbeats WHERE name = 'service'" + tx.for_update)
            if hb is None or now - float(hb["at"]) <= grace:
                return 0.0
            since = float(hb["at"])
            rows = tx.rows("SELECT id, presented_at FROM sessions WHERE status = 'active' AND paused_at IS NULL AND "
                           "pending_item IS NOT NULL AND presented_at < ?", (now,))
            for r in rows:
                credit = now - max(float(r["presented_at"]), since)
                tx.run("UPDATE sessions SET presented_at = presented_at + ? WHERE id = ?", (credit, r["id"]))
                self._event(tx, r["id"], "outage_credit", {"from": since, "to": now, "seconds": credit})
            tx.run("UPDATE heartbeats SET at = ? WHERE name = 'service'", (now,))
        self._live.clear()
        return now - since

    def start_heartbeat(self, interval: float = HEARTBEAT_SECONDS) -> None:
        """Beat every ``interval`` seconds in a daemon thread until :meth:`stop_heartbeat`."""
        if self._heartbeat_stop is not None:
            return
        stop = self._heartbeat_stop = threading.Event()

        def run():
            while not stop.is_set():
                try:
                    self.beat()
                except Exception:  # noqa: BLE001 - a missed beat only widens a later outage credit
                    pass
                stop.wait(interval)

        threading.Thread(target=run, name="adaptive-heartbeat", daemon=True).start()

    def stop_heartbeat(self) -> None:
        if self._heartbeat_stop is not None:
            self._heartbeat_stop.set()
            self._heartbeat_stop = None
