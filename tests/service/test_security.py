"""Abuse of the delivery API: tokens, other candidates' sessions, keys and parameters, admin
access, and malformed, mistyped or oversized requests (always a 4xx with a message, never a 500)."""

import base64
import json
import re
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import ADMIN_KEY
from .helpers import API, leaks, start, take_exam

ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture
def client(make_client, tmp_path):
    return make_client(f"sqlite:///{tmp_path / 's.db'}")


def test_tokens_are_unguessable_and_only_their_hash_is_stored(client):
    tokens = [start(client)[0]["token"] for _ in range(40)]
    assert len(set(tokens)) == len(tokens)
    for t in tokens:
        raw = base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))
        assert len(raw) * 8 >= 256  # secrets.token_urlsafe(32): 256 random bits
    store = client.app.state.delivery.store
    with store.transaction() as tx:
        stored = [r["token_hash"] for r in tx.rows("SELECT token_hash FROM sessions")]
    assert not set(stored) & set(tokens)
    assert all(len(h) == 64 for h in stored)


def test_a_token_opens_its_own_session_only(client, cmcs_bank):
    a, ha = start(client)
    b, hb = start(client)
    sa, sb = a["session_id"], b["session_id"]
    for method, path, body in [("GET", f"/sessions/{sb}/item", None), ("GET", f"/sessions/{sb}/result", None),
                               ("POST", f"/sessions/{sb}/answers",
                                {"item_id": b["item"]["item_id"], "seq": 1, "choice": "A"})]:
        r = client.request(method, API + path, headers=ha, json=body)  # A's token on B's session
        assert r.status_code == 404, r.text
        assert "not found" in r.json()["detail"]
        assert b["item"]["stem"] not in r.text
        r = client.request(method, API + path, json=body)  # no token
        assert r.status_code == 401 and "Bearer" in r.json()["detail"]
        r = client.request(method, API + path, json=body, headers={"Authorization": "Bearer " + "x" * 43})
        assert r.status_code == 404
        r = client.request(method, API + path, json=body, headers={"Authorization": "Basic abc"})
        assert r.status_code == 401
    # B's session was not touched by any of that
    now = client.get(f"{API}/sessions/{sb}/item", headers=hb).json()["item"]
    assert (now["item_id"], now["seq"]) == (b["item"]["item_id"], 1)
    trail = client.get(f"{API}/admin/sessions/{sb}/audit", headers=ADMIN).json()
    assert trail["answers"] == []
    assert client.get(f"{API}/sessions/{sa}/item", headers=ha).status_code == 200


def test_no_candidate_response_carries_keys_parameters_or_other_sessions(client, cmcs_bank):
    bodies = []
    other, _ = start(client)
    data, headers, _ = take_exam(client, cmcs_bank, bodies=bodies)
    sid = data["session_id"]
    for path in ("/item", "/result"):
        bodies.append(client.get(f"{API}/sessions/{sid}{path}", headers=headers).text)
    # refusals and errors are candidate-facing too
    bodies.append(client.post(f"{API}/sessions/{sid}/answers", headers=headers,
                              json={"item_id": "CMCS-ICD-001", "seq": 999, "choice": "A"}).text)
    bodies.append(client.post(f"{API}/sessions/{sid}/answers", headers=headers, content=b"{").text)
    item_fields = set()
    for body in bodies:
        found = leaks(body, cmcs_bank, own_session=sid, others=(other["session_id"], other["token"], ADMIN_KEY))
        assert not found, (found, body[:300])
        doc = json.loads(body)
        for item in [doc.get("item"), doc.get("next")]:
            if item:
                item_fields |= set(item)
    assert item_fields == {"item_id", "stem", "options", "seq", "time_remaining_seconds"}
    # the numbers of the bank appear nowhere (a, b, c of every item, to 6 digits); the protocol's own numbers
    # (a wall-clock time left such as 7182.12213..., P(pass)) are left out, or they match by chance
    own_numbers = {"time_remaining_seconds", "p_pass", "scaled_score"}

    def without_own_numbers(node):
        if isinstance(node, dict):
            return {k: without_own_numbers(v) for k, v in node.items() if k not in own_numbers}
        return [without_own_numbers(v) for v in node] if isinstance(node, list) else node

    text = "\n".join(json.dumps(without_own_numbers(json.loads(b))) for b in bodies)
    # whole numbers only: a 4-decimal parameter such as 0.1645 is a substring of a θ such as 0.16452 by chance
    numbers = {float(tok) for tok in re.findall(r"-?\d+\.\d+(?:[eE][-+]?\d+)?", text)}
    for it in cmcs_bank.items:
        for v in (it.a, it.b, it.c):
            if v is not None and not float(v).is_integer():
                assert float(v) not in numbers and round(float(v), 6) not in numbers, (it.id, v)
    # the OpenAPI document describes no endpoint that serves a key
    spec = client.get("/openapi.json").text
    assert ADMIN_KEY not in spec and "rationale" not in spec
    paths = json.loads(spec)["paths"]
    assert {"/api/v1/sessions", "/api/v1/sessions/{session_id}/item", "/api/v1/sessions/{session_id}/answers",
            "/api/v1/sessions/{session_id}/result", "/api/v1/admin/banks", "/api/v1/admin/responses"} <= set(paths)


@pytest.mark.parametrize("headers,status", [({}, 401), ({"X-API-Key": "wrong"}, 403), ({"X-API-Key": ""}, 401)])
def test_admin_endpoints_refuse_without_the_key(client, headers, status):
    sid = start(client)[0]["session_id"]
    for method, path in [("GET", "/admin/banks"), ("POST", "/admin/banks"), ("POST", "/admin/banks/1/activate"),
                         ("GET", "/admin/sessions"), ("GET", f"/admin/sessions/{sid}/audit"),
                         ("GET", "/admin/responses")]:
        r = client.request(method, API + path, headers=headers, json={"bank": {}} if method == "POST" else None)
        assert r.status_code == status, (path, r.text)
        assert "key" in r.json()["detail"].lower()


def test_admin_endpoints_are_off_without_a_configured_key(make_client, tmp_path):
    client = make_client(f"sqlite:///{tmp_path / 's.db'}", admin_key=None)
    r = client.get(API + "/admin/sessions", headers={"X-API-Key": "anything"})
    assert r.status_code == 403 and "--admin-key" in r.json()["detail"]


def test_malformed_requests_get_a_clear_4xx(client):
    data, headers = start(client)
    sid, item = data["session_id"], data["item"]
    url = f"{API}/sessions/{sid}/answers"
    js = {**headers, "Content-Type": "application/json"}
    cases = [
        (dict(content=b"{not json", headers=js), 422, "not valid JSON"),
        (dict(content=b"", headers=js), 422, "body"),
        (dict(content=b'{"item_id": "x", "seq": NaN, "choice": "A"}', headers=js), 422, "'seq'"),
        (dict(content=b'{"item_id": "x", "seq": 1, "choice": Infinity}', headers=js), 422, "'choice'"),
        (dict(json=[1, 2], headers=headers), 422, "body"),
        (dict(json={"item_id": item["item_id"], "seq": "1", "choice": "A"}, headers=headers), 422, "'seq'"),
        (dict(json={"item_id": item["item_id"], "seq": 1.5, "choice": "A"}, headers=headers), 422, "'seq'"),
        (dict(json={"item_id": item["item_id"], "seq": 0, "choice": "A"}, headers=headers), 422, "'seq'"),
        (dict(json={"item_id": item["item_id"], "seq": 1}, headers=headers), 422, "'choice'"),
        (dict(json={"item_id": item["item_id"], "seq": 1, "choice": "Q"}, headers=headers), 422, "not an option"),
        (dict(json={"item_id": item["item_id"], "seq": 1, "choice": 7}, headers=headers), 422, "not an option"),
        (dict(json={"item_id": item["item_id"], "seq": 1, "choice": True}, headers=headers), 422, "choice"),
        (dict(json={"item_id": item["item_id"], "seq": 1, "choice": "A", "extra": 1}, headers=headers), 422,
         "'extra'"),
        (dict(json={"item_id": None, "seq": 1, "choice": "A"}, headers=headers), 422, "'item_id'"),
        (dict(json={"item_id": "x" * 201, "seq": 1, "choice": "A"}, headers=headers), 422, "'item_id'"),
        (dict(json={"item_id": item["item_id"], "seq": 5, "choice": "A"}, headers=headers), 409, "ahead"),
        # beyond a database integer: refused as a value (issue 17), before any session is touched
        (dict(json={"item_id": item["item_id"], "seq": 2**70, "choice": "A"}, headers=headers), 422, "'seq'"),
        (dict(json={"item_id": "x" * 10000, "seq": 1, "choice": "A"}, headers=headers), 422, "item_id"),
        (dict(content=b'{"item_id": "' + b"x" * 20000 + b'"}', headers=js), 413, "larger than"),
    ]
    for kwargs, status, words in cases:
        r = client.post(url, **kwargs)
        assert r.status_code == status, (str(kwargs.get("json", kwargs.get("content", b"")))[:80], r.text[:300])
        assert words in r.json()["detail"], r.json()
    # odd session ids and paths
    for bad in ["../../etc/passwd", "x" * 5000, "%00", sid.upper(), sid[:-1]]:
        r = client.get(f"{API}/sessions/{bad}/item", headers=headers)
        assert r.status_code == 404, (bad[:20], r.status_code)
    r = client.post(API + "/sessions", json={"candidate": 5})
    assert r.status_code == 422 and "'candidate'" in r.json()["detail"]
    # nothing of that reached the session
    trail = client.get(f"{API}/admin/sessions/{sid}/audit", headers=ADMIN).json()
    assert trail["answers"] == []


def test_oversized_bodies_are_refused_even_without_a_length(client):
    sid = start(client)[0]["session_id"]

    def chunks():
        for _ in range(40):
            yield b"x" * 1024

    r = client.post(f"{API}/sessions/{sid}/answers", content=chunks(),
                    headers={"Content-Type": "application/json", "Authorization": "Bearer x"})
    assert r.status_code == 413 and "larger than" in r.json()["detail"]
    r = client.post(API + "/admin/banks", headers={**ADMIN, "Content-Type": "application/json"}, content=b"[]")
    assert r.status_code == 422


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory, cmcs_pool):
    import warnings

    from fastapi.testclient import TestClient

    from adaptive.service.app import create_app
    from adaptive.service.ratelimit import RateLimits

    app = create_app(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 's.db'}", bank=cmcs_pool, admin_key=ADMIN_KEY,
                     practice=True, rate_limits=RateLimits.off())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield TestClient(app, raise_server_exceptions=False)
    app.state.delivery.store.close()


@given(body=st.dictionaries(st.sampled_from(["item_id", "seq", "choice", "candidate", "x"]), json_values, max_size=4))
def test_fuzzed_answer_bodies_never_cause_a_server_error(fuzz_client, body):
    data, headers = start(fuzz_client)  # a fresh session per example
    r = fuzz_client.post(f"{API}/sessions/{data['session_id']}/answers", headers=headers, json=body)
    assert 200 <= r.status_code < 500, (body, r.text)
    assert "detail" in r.json() or r.status_code == 200
    if r.status_code == 200:  # only a well-formed answer to the presented item is taken
        assert body["item_id"] == data["item"]["item_id"] and body["seq"] == 1


def test_huge_numbers_and_control_characters_get_422_on_both_databases(make_client, db_url, cmcs_bank):
    """Issue 17: numbers too large for a database integer and NUL characters in stored text were HTTP 500s
    (PostgreSQL refuses NUL in text); every one is now a 422 naming the field, and nothing is stored."""
    client = make_client(db_url)
    data, headers = start(client)
    sid, item = data["session_id"], data["item"]
    big = 2**70
    cases = [
        ("POST", f"/admin/banks/{big}/activate", None, ADMIN),
        ("GET", f"/admin/sessions?bank_version={big}", None, ADMIN),
        ("GET", f"/admin/sessions?offset={big}", None, ADMIN),
        ("GET", f"/admin/responses?bank_version={big}", None, ADMIN),
        ("POST", f"/sessions/{sid}/answers", {"item_id": item["item_id"], "seq": 10**40, "choice": "A"}, headers),
        ("POST", f"/sessions/{sid}/answers", {"item_id": item["item_id"], "seq": 1, "choice": 10**40}, headers),
        ("POST", f"/sessions/{sid}/answers", {"item_id": item["item_id"] + "\x00", "seq": 1, "choice": "A"}, headers),
        ("POST", "/sessions", {"candidate": "Ann\x00"}, {}),
    ]
    bank = json.loads(cmcs_bank.to_json())
    bank["items"][0]["content"]["stem"] += "\x00"
    cases.append(("POST", "/admin/banks", {"bank": bank, "activate": False}, ADMIN))
    before = client.get(f"{API}/admin/banks", headers=ADMIN).json()
    for method, path, body, hdrs in cases:
        r = client.request(method, API + path, json=body, headers=hdrs)
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert r.json()["detail"], r.text
    assert client.get(f"{API}/admin/banks", headers=ADMIN).json() == before
    now = client.get(f"{API}/sessions/{sid}/item", headers=headers).json()["item"]
    assert (now["item_id"], now["seq"]) == (item["item_id"], 1)  # the session did not move
    # the numbers themselves, sent as raw JSON (beyond a float), are refused the same way
    raw = ('{"item_id": "' + item["item_id"] + '", "seq": 1' + "0" * 400 + ', "choice": "A"}').encode()
    r = client.post(f"{API}/sessions/{sid}/answers", content=raw,
                    headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text


def _routes():
    from fastapi.routing import APIRoute

    from adaptive.service.app import create_app

    app = create_app("sqlite:///:memory:", admin_key=ADMIN_KEY)
    out = [(method, r.path) for r in app.routes if isinstance(r, APIRoute) for method in sorted(r.methods)]
    app.state.delivery.store.close()
    return out


ROUTES = _routes()
path_values = st.one_of(st.text(max_size=40), st.integers(-(2**80), 2**80).map(str),
                        st.sampled_from(["0", "1", "-1", "1e400", "nan", "%00", "..", "a" * 32, "0" * 32]))
query_values = st.dictionaries(st.sampled_from(["status", "bank_version", "limit", "offset", "format", "candidate_id",
                                                "x"]), st.one_of(path_values, st.none().map(lambda _: "")), max_size=3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), params=path_values, query=query_values, body=json_values,
       admin=st.booleans())
def test_every_route_answers_fuzzed_paths_queries_and_bodies_without_a_server_error(fuzz_client, route, params,
                                                                                      query, body, admin):
    """Issue 17: no request a client can send gets a 5xx, on any route of the API (paths, queries and bodies
    drawn at random; the admin key sent or not)."""
    method, path = route
    url = re.sub(r"\{[^}]+\}", lambda _m: quote(params, safe=""), path)
    headers = {"X-API-Key": ADMIN_KEY} if admin else {}
    r = fuzz_client.request(method, url, params=query, json=body if method in ("POST", "PUT") else None,
                            headers=headers)
    assert r.status_code < 500, (method, url, query, body, r.status_code, r.text[:300])


def test_unknown_fields_suggest_the_known_one_and_unreadable_bodies_say_what_to_send(client):
    r = client.post(f"{API}/launch", json={"cod": "ABCD"})
    assert r.status_code == 422 and "body field 'cod': unknown field; did you mean 'code'?" in r.json()["detail"]
    deep = "[" * 5000 + "]" * 5000
    r = client.post(f"{API}/launch", content=deep, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "nested too deeply" in r.json()["detail"]
    r = client.get(f"{API}/nothing-here")
    assert r.status_code == 404 and r.json()["detail"] == "GET /api/v1/nothing-here: no such endpoint; the API is " \
                                                           "listed at /docs"
    r = client.delete(f"{API}/exam")
    assert r.status_code == 405 and "does not take that method" in r.json()["detail"]
