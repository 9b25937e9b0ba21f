"""Issue 17: the service signs what it stores. A session row or an answer changed in the database outside the
service is noticed when the session is rebuilt (409, audited), never resumed silently with another θ̂."""

import pytest

from adaptive.service import Delivery, open_store

from .helpers import keyed_choice
from .test_exam_day import FakeClock, _design

KEY = "integrity-test-key"


def _session(db_url, cmcs_bank, cmcs_pool, key=KEY, n=6):
    d = Delivery(open_store(db_url), clock=FakeClock(), practice=True, state_key=key)
    d.add_version(cmcs_bank, _design(cmcs_pool))
    s = d.start()
    item = s["item"]
    for k in range(n):
        d.clock.advance(20 + k)  # every answer takes time, so the used time is not 0
        ack = d.answer(s["session_id"], s["token"], item_id=item["item_id"], seq=item["seq"],
                       choice=keyed_choice(cmcs_bank, item, k % 2 == 0))
        item = ack["next"]
    return d, s, item


def _fresh(d):
    """Another server process on the same database (nothing cached): it must rebuild from the rows."""
    return Delivery(d.store, clock=d.clock, practice=True, state_key=d.state_key)


@pytest.mark.parametrize("change", [
    "UPDATE answers SET response = 1 - response WHERE session_id = ? AND seq = 3",
    "UPDATE answers SET seconds = seconds + 1 WHERE session_id = ? AND seq = 1",
    "DELETE FROM answers WHERE session_id = ? AND seq = 6",
    "UPDATE sessions SET seed = seed + 1 WHERE id = ?",
    "UPDATE sessions SET time_limit = time_limit + 3600 WHERE id = ?",
    "UPDATE sessions SET elapsed = 0 WHERE id = ?",
])
def test_a_row_changed_outside_the_service_stops_the_session(db_url, cmcs_bank, cmcs_pool, change):
    d, s, _ = _session(db_url, cmcs_bank, cmcs_pool)
    sid = s["session_id"]
    with d.store.transaction() as tx:
        tx.run(change, (sid,))
        if change.startswith("DELETE"):
            tx.run("UPDATE sessions SET n_answered = 5 WHERE id = ?", (sid,))
    other = _fresh(d)
    with pytest.raises(Exception, match="failed its integrity check") as err:
        other.current(sid, s["token"])
    assert err.value.status == 409
    trail = other.audit(sid)
    assert trail["session"]["integrity"].startswith("FAILED")
    assert trail["events"][-1]["kind"] == "integrity_failed"
    d.store.close()


def test_intact_sessions_verify_and_proctor_extensions_stay_signed(db_url, cmcs_bank, cmcs_pool):
    d, s, item = _session(db_url, cmcs_bank, cmcs_pool)
    sid = s["session_id"]
    d.extend(sid, 600, "accommodation added late")
    other = _fresh(d)
    cur = other.current(sid, s["token"])  # rebuilt from the rows: verified
    assert cur["item"]["item_id"] == item["item_id"]
    assert other.audit(sid)["session"]["integrity"] == "verified"
    ack = other.answer(sid, s["token"], item_id=item["item_id"], seq=item["seq"], choice="A")
    assert ack["accepted"] and _fresh(d).audit(sid)["session"]["integrity"] == "verified"
    d.store.close()


def test_without_a_key_nothing_is_signed(tmp_path, cmcs_bank, cmcs_pool):
    d, s, _ = _session(f"sqlite:///{tmp_path / 'u.db'}", cmcs_bank, cmcs_pool, key=None)
    assert d.audit(s["session_id"])["session"]["integrity"] == "unsigned"
    d.store.close()
