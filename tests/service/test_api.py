"""The delivery API end to end, in-process, on SQLite and on a real PostgreSQL server.

The reference for every score is the library itself: a session's result must equal
``Session.replay`` of its stored answers (the engine's own tests check the engine against catR
and closed forms), and each acknowledged answer must be stored exactly once.
"""

import csv
import io
import json

import numpy as np
import pytest

from adaptive import ItemBank, Session
from adaptive.cat import ExamDesign
from adaptive.data_io import read_responses
from adaptive.service import Delivery, Invalid, delivery_problems, open_store

from .conftest import ADMIN_KEY
from .helpers import API, answer, keyed_choice, start, take_exam

ADMIN = {"X-API-Key": ADMIN_KEY}


def test_a_whole_exam_matches_an_offline_replay(db_url, make_client, cmcs_bank, cmcs_pool):
    client = make_client(db_url)
    data, headers, acks = take_exam(client, cmcs_bank)
    sid = data["session_id"]
    assert data["exam"]["name"] == "CMCS adaptive exam"
    assert data["exam"] == {"name": "CMCS adaptive exam", "min_items": 35, "max_items": 65,
                            "time_limit_seconds": 7200.0, "practice": True,
                            "scale": {"minimum": 100.0, "maximum": 400.0, "passing_score": 300.0}}
    assert [a["seq"] for a in acks] == list(range(1, len(acks) + 1))
    assert 35 <= len(acks) <= 65
    res = client.get(f"{API}/sessions/{sid}/result", headers=headers)
    assert res.status_code == 200, res.text
    res = res.json()
    # the same answers through the library, with no service in between
    design = ExamDesign.load(cmcs_pool / "design.json")
    trail = client.get(f"{API}/admin/sessions/{sid}/audit", headers=ADMIN).json()
    answers = [(a["item_id"], a["response"], a["seconds"]) for a in trail["answers"]]
    offline = Session.replay(design, cmcs_bank, trail["session"]["seed"], answers).result()
    assert offline.finished
    assert res["decision"] == offline.decision
    assert res["scaled_score"] == offline.scaled_score
    assert "p_pass" not in res and "theta" not in res  # not candidate-facing unless the design's report says so
    assert trail["session"]["result"]["p_pass"] == offline.p_pass
    assert res["n_answered"] == len(answers) == len(acks)
    assert offline.items == [a["item_id"] for a in trail["answers"]]
    # the scored response is the key comparison of the chosen option
    for a in trail["answers"]:
        key = cmcs_bank.items[cmcs_bank.index[a["item_id"]]].content.key
        assert a["response"] == int(chr(ord("A") + a["choice"]) == key)  # choice: the authored option
    # the current-item endpoint says finished; answering more is refused
    cur = client.get(f"{API}/sessions/{sid}/item", headers=headers).json()
    assert cur["finished"] is True and cur["item"] is None
    last = acks[-1]
    r = client.post(f"{API}/sessions/{sid}/answers", headers=headers,
                    json={"item_id": "CMCS-ICD-001", "seq": last["seq"] + 1, "choice": "A"})
    assert r.status_code == 409 and "ended" in r.json()["detail"]


def test_retries_are_acknowledged_once_and_stale_or_ahead_answers_get_409(db_url, make_client, cmcs_bank):
    client = make_client(db_url)
    data, headers = start(client)
    sid, item = data["session_id"], data["item"]
    choice = keyed_choice(cmcs_bank, item, True)
    first = answer(client, sid, headers, item, choice)
    assert first.status_code == 200 and first.json()["repeated"] is False
    again = answer(client, sid, headers, item, choice)  # a retry after a lost acknowledgement
    assert again.status_code == 200, again.text
    assert again.json()["repeated"] is True
    same = lambda item: {k: v for k, v in item.items() if k != "time_remaining_seconds"}  # noqa: E731
    assert same(again.json()["next"]) == same(first.json()["next"])
    # the index form of the same option is the same answer
    assert answer(client, sid, headers, item, ord(choice) - ord("A")).json()["repeated"] is True
    # the same step with another option: stale, refused, nothing changes
    other = keyed_choice(cmcs_bank, item, False)
    r = answer(client, sid, headers, item, other)
    assert r.status_code == 409 and "answered already with another answer" in r.json()["detail"]
    nxt = first.json()["next"]
    # ahead of the session
    r = client.post(f"{API}/sessions/{sid}/answers", headers=headers,
                    json={"item_id": nxt["item_id"], "seq": nxt["seq"] + 1, "choice": "A"})
    assert r.status_code == 409 and "ahead" in r.json()["detail"]
    # an item that was not presented, at the right step
    foreign = next(i.id for i in cmcs_bank.items if i.id not in (nxt["item_id"], item["item_id"]))
    r = client.post(f"{API}/sessions/{sid}/answers", headers=headers,
                    json={"item_id": foreign, "seq": nxt["seq"], "choice": "A"})
    assert r.status_code == 409 and "was not presented" in r.json()["detail"]
    # the answered item again at the new step
    r = client.post(f"{API}/sessions/{sid}/answers", headers=headers,
                    json={"item_id": item["item_id"], "seq": nxt["seq"], "choice": choice})
    assert r.status_code == 409 and "answered already" in r.json()["detail"]
    # the result is not ready
    r = client.get(f"{API}/sessions/{sid}/result", headers=headers)
    assert r.status_code == 409 and "in progress" in r.json()["detail"]
    trail = client.get(f"{API}/admin/sessions/{sid}/audit", headers=ADMIN).json()
    assert [a["seq"] for a in trail["answers"]] == [1]
    kinds = [e["kind"] for e in trail["events"]]
    assert kinds.count("repeated") == 2 and kinds.count("refused") == 4
    # the session goes on from where it was
    cur = client.get(f"{API}/sessions/{sid}/item", headers=headers).json()
    assert same(cur["item"]) == same(nxt) and cur["progress"]["answered"] == 1


def test_a_new_process_resumes_every_session_with_the_same_next_item(db_url, make_client, cmcs_bank):
    client = make_client(db_url)
    sessions = []
    for k in range(4):
        data, headers = start(client)
        item = data["item"]
        for step in range(3 + 4 * k):
            ack = answer(client, data["session_id"], headers, item,
                         keyed_choice(cmcs_bank, item, step % 3 != 0)).json()
            item = ack["next"]
        sessions.append((data["session_id"], headers, item))
    # a second application on the same database: nothing in memory, everything from the store
    fresh = make_client(db_url)
    for sid, headers, item in sessions:
        cur = fresh.get(f"{API}/sessions/{sid}/item", headers=headers)
        assert cur.status_code == 200, cur.text
        assert cur.json()["item"]["item_id"] == item["item_id"]
        assert cur.json()["item"]["seq"] == item["seq"]
    # and the resumed sessions run to the same result as an uninterrupted replay
    sid, headers, item = sessions[-1]
    while item is not None:
        ack = answer(fresh, sid, headers, item, keyed_choice(cmcs_bank, item, item["seq"] % 2 == 0)).json()
        item = None if ack["finished"] else ack["next"]
    res = fresh.get(f"{API}/sessions/{sid}/result", headers=headers).json()
    replayed = fresh.app.state.delivery.replay(sid).result()
    assert (res["decision"], res["scaled_score"]) == (replayed.decision, replayed.scaled_score)
    events = [e["kind"] for e in fresh.get(f"{API}/admin/sessions/{sid}/audit", headers=ADMIN).json()["events"]]
    assert "resumed" in events


def test_bank_versions_sessions_keep_the_version_they_started_with(db_url, make_client, cmcs_bank):
    client = make_client(db_url)
    old, old_headers = start(client)
    # version 2: the same items with every difficulty shifted, so the first item differs
    v2 = json.loads(cmcs_bank.to_json())
    v2["version"] = "2"
    for it in v2["items"]:
        if "b" in it:
            it["b"] = it["b"] + 1.5
    r = client.post(API + "/admin/banks", headers=ADMIN, json={"bank": v2})
    assert r.status_code == 201, r.text
    info = r.json()
    assert info["active"] is True and info["version"] == "2" and info["n_items"] == len(cmcs_bank)
    listed = client.get(API + "/admin/banks", headers=ADMIN).json()
    assert [v["active"] for v in listed] == [False, True]
    assert listed[0]["n_sessions"] == 1
    new, _ = start(client)
    rows = {s["id"]: s for s in client.get(API + "/admin/sessions", headers=ADMIN).json()}
    assert rows[old["session_id"]]["bank_version"] == listed[0]["id"]
    assert rows[new["session_id"]]["bank_version"] == info["id"]
    # the old session continues on version 1: its replay under version 1 matches
    item = old["item"]
    for _ in range(5):
        item = answer(client, old["session_id"], old_headers, item, "A").json()["next"]
    ver1 = client.app.state.delivery.version(listed[0]["id"])
    assert ver1.bank.version == cmcs_bank.version
    replayed = client.app.state.delivery.replay(old["session_id"])
    assert replayed.pending_item == item["item_id"]
    # uploading the same bank again makes no new version; activate switches back
    again = client.post(API + "/admin/banks", headers=ADMIN, json={"bank": v2, "activate": False}).json()
    assert again["id"] == info["id"]
    assert client.post(f"{API}/admin/banks/{listed[0]['id']}/activate", headers=ADMIN).json()["active"] is True
    assert client.post(f"{API}/admin/banks/999/activate", headers=ADMIN).status_code == 404


def test_bad_bank_uploads_name_the_item_and_field(make_client, tmp_path, cmcs_bank):
    client = make_client(f"sqlite:///{tmp_path / 's.db'}")
    bad = json.loads(cmcs_bank.to_json())
    bad["items"][3]["a"] = -1.0
    r = client.post(API + "/admin/banks", headers=ADMIN, json={"bank": bad})
    assert r.status_code == 422
    assert bad["items"][3]["id"] in r.json()["detail"] and "'a'" in r.json()["detail"]
    no_content = json.loads(cmcs_bank.to_json())
    del no_content["items"][0]["content"]
    r = client.post(API + "/admin/banks", headers=ADMIN, json={"bank": no_content})
    assert r.status_code == 422
    assert no_content["items"][0]["id"] in r.json()["detail"] and "content" in r.json()["detail"]
    r = client.post(API + "/admin/banks", headers=ADMIN, json={"bank": json.loads(cmcs_bank.to_json()),
                                                               "design": {"min_length": 9, "max_length": 3}})
    assert r.status_code == 422 and "min_length 9 exceeds max_length 3" in r.json()["detail"]
    assert len(client.get(API + "/admin/banks", headers=ADMIN).json()) == 1  # nothing was stored


def test_export_is_long_format_that_calibration_reads(db_url, make_client, cmcs_bank, tmp_path):
    client = make_client(db_url)
    sids = [take_exam(client, cmcs_bank, pattern=lambda s, k=k: (s + k) % 3 != 0)[0]["session_id"] for k in range(3)]
    start(client)  # an unfinished session with no answers
    r = client.get(API + "/admin/responses", headers=ADMIN, params={"status": "finished"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {row["person"] for row in rows} == set(sids)
    path = tmp_path / "export.csv"
    path.write_text(r.text)
    table = read_responses(path, bank=cmcs_bank)
    assert table.values.shape == (3, len({row["item"] for row in rows}))
    n_answers = sum(len(client.get(f"{API}/admin/sessions/{s}/audit", headers=ADMIN).json()["answers"])
                    for s in sids)
    assert np.isfinite(table.values).sum() == n_answers == len(rows)
    js = client.get(API + "/admin/responses", headers=ADMIN, params={"format": "json"}).json()
    assert len(js) == len(rows) and {"pretest", "seconds", "seq"} <= set(js[0])
    listed = client.get(API + "/admin/sessions", headers=ADMIN, params={"status": "active"}).json()
    assert len(listed) == 1 and listed[0]["n_answered"] == 0


def test_audit_trail_explains_each_step(make_client, tmp_path, cmcs_bank):
    client = make_client(f"sqlite:///{tmp_path / 's.db'}")
    data, _, acks = take_exam(client, cmcs_bank)
    trail = client.get(f"{API}/admin/sessions/{data['session_id']}/audit", headers=ADMIN).json()
    answers = trail["answers"]
    assert len(answers) == len(acks)
    assert sum(a["pretest"] for a in answers) == 5
    for prev, cur in zip(answers, answers[1:], strict=False):
        assert cur["theta_before"] == prev["theta_after"] and cur["se_before"] == prev["se_after"]
        assert cur["seconds"] >= 0
    kinds = [e["kind"] for e in trail["events"]]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert trail["session"]["result"]["stopped_by"] == trail["events"][-1]["detail"]["stopped_by"]


def test_delivery_refuses_banks_it_cannot_show(tmp_path):
    d = Delivery(open_store(f"sqlite:///{tmp_path / 's.db'}"))
    design = ExamDesign(min_length=1, max_length=3)
    bank = ItemBank(items=[{"id": f"Q{k}", "a": 1.0, "b": 0.0} for k in range(5)])
    with pytest.raises(Invalid, match="Q0.*no content"):
        d.add_version(bank, design)
    true_false = {"stem": "True or false?", "options": ["True", "False"]}
    graded = {"id": "G", "model": "graded", "a": 1.0, "thresholds": [-1.0, 1.0],
              "content": {"stem": "Rate it", "options": ["low", "high"]}}
    bank = ItemBank(items=[{"id": f"T{k}", "a": 1.0, "b": 0.0, "content": true_false} for k in range(4)] + [graded])
    problems = delivery_problems(bank)
    assert problems[0] == "item 'T0': field 'content.key': a right/wrong item needs its key to be scored"
    assert problems[-1].startswith("item 'G': field 'content.options': 2 options for 3 score categories")
    assert len(problems) == 5
    with pytest.raises(Invalid, match="5 problem"):
        d.add_version(bank, design)
    assert d.versions() == []


def test_the_first_upload_to_an_empty_database_needs_its_design(make_client, tmp_path, cmcs_bank, cmcs_pool):
    client = make_client(f"sqlite:///{tmp_path / 's.db'}", bank=None)
    assert client.post(API + "/sessions", json={}).status_code == 409  # nothing to deliver yet
    bank = json.loads(cmcs_bank.to_json())
    r = client.post(API + "/admin/banks", headers=ADMIN, json={"bank": bank})
    assert r.status_code == 422 and "send the design with the bank" in r.json()["detail"]
    design = json.loads((cmcs_pool / "design.json").read_text())
    r = client.post(API + "/admin/banks", headers=ADMIN, json={"bank": bank, "design": design})
    assert r.status_code == 201 and r.json()["active"] is True
    assert client.post(API + "/sessions", json={}).status_code == 201


def test_api_documentation_is_served_from_the_package_without_a_cdn(make_client):
    client = make_client("sqlite:///:memory:")
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in page.text and "cdn" not in page.text.lower()
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    js = client.get("/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert client.get("/docs-assets/swagger-ui.css").status_code == 200
