"""Shared steps of the service tests."""

import json

API = "/api/v1"

#: Field names that must never appear in a candidate-facing response body.
SECRET_FIELDS = {"key", "rationale", "a", "b", "c", "d", "thresholds", "params", "parameters", "theta", "se",
                 "theta_before", "theta_after", "se_before", "se_after", "seed", "token_hash", "bank_json",
                 "design_json", "exposure", "sh", "domain", "status", "pretest", "enemies", "response", "correct",
                 "score_categories", "admin_key", "api_key", "info", "information", "cognitive_level", "provenance",
                 "p_pass"}
#: fields allowed under a parent: the score report names each content domain
ALLOWED = {("domains.", "domain")}


def start(client, candidate=None):
    r = client.post(API + "/sessions", json={"candidate": candidate} if candidate else {})
    assert r.status_code == 201, r.text
    data = r.json()
    return data, {"Authorization": f"Bearer {data['token']}"}


def answer(client, sid, headers, item, choice):
    return client.post(f"{API}/sessions/{sid}/answers", headers=headers,
                       json={"item_id": item["item_id"], "seq": item["seq"], "choice": choice})


def keyed_choice(bank, item: dict, correct: bool) -> str:
    """The letter shown for the key (or for a wrong option) of a presented item: the options are shuffled per
    candidate, so the letter is found by the key's text in the bank the test holds."""
    content = bank.items[bank.index[item["item_id"]]].content
    key_text = content.options[ord(content.key) - ord("A")]
    shown = {o["text"]: o["label"] for o in item["options"]}
    if correct:
        return shown[key_text]
    return next(label for text, label in shown.items() if text != key_text)


def take_exam(client, bank, pattern=lambda step: step % 2 == 0, bodies=None):
    """Start and finish an exam answering correctly where ``pattern(step)``; returns (start data, headers, acks)."""
    data, headers = start(client)
    if bodies is not None:
        bodies.append(json.dumps(data))
    item, acks, step = data["item"], [], 0
    while item is not None:
        r = answer(client, data["session_id"], headers, item, keyed_choice(bank, item, pattern(step)))
        assert r.status_code == 200, r.text
        if bodies is not None:
            bodies.append(r.text)
        ack = r.json()
        acks.append(ack)
        item = None if ack["finished"] else ack["next"]
        step += 1
    return data, headers, acks


def leaks(body: str, bank, own_session: str | None = None, others=()) -> list[str]:
    """What a candidate-facing body gives away: secret field names anywhere in the JSON, an item's
    key/rationale text, another session's id or token."""
    found = []
    try:
        doc = json.loads(body)
    except json.JSONDecodeError:
        doc = None

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                if k.lower() in SECRET_FIELDS and (path, k) not in ALLOWED:
                    found.append(f"field {path + k!r}")
                walk(v, path + k + ".")
        elif isinstance(node, list):
            for v in node:
                walk(v, path)

    walk(doc, "")
    for item in bank.items:
        c = item.content
        if c is not None and c.rationale and c.rationale in body:
            found.append(f"rationale of {item.id}")
    for other in others:
        if other and other != own_session and other in body:
            found.append(f"another session's id or token {other[:8]}...")
    return found
