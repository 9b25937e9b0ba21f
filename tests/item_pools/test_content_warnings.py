"""`adaptive bank check` content warnings: key-letter balance, near-duplicate options, a longest-option key,
order-bound options in a shuffled item; the bundled pools pass with every key letter at 20-30%."""

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from adaptive.bank import ItemBank
from adaptive.pools import content_warnings

POOLS = Path(__file__).resolve().parents[2] / "item_pools"


def _bank(items):
    return ItemBank.from_dict({"name": "t", "version": "1", "items": [
        {"id": f"I{k}", "model": "2pl", "a": 1.0, "b": 0.0, "content": c} for k, c in enumerate(items)]})


def _content(key="A", options=("alpha one", "beta two", "gamma three", "delta four"), **kw):
    return {"stem": "Which one?", "options": list(options), "key": key, "rationale": "because", **kw}


@pytest.mark.parametrize("pool", ["cmcs", "cmrs"])
def test_bundled_pools_have_balanced_keys_and_no_content_warning(pool):
    bank = ItemBank.load(POOLS / pool / "bank.json")
    keys = Counter(it.content.key for it in bank.items)
    shares = {k: n / len(bank.items) for k, n in keys.items()}
    assert set(shares) == {"A", "B", "C", "D"} and all(0.20 <= v <= 0.30 for v in shares.values()), shares
    assert content_warnings(bank) == []
    run = subprocess.run([sys.executable, "-m", "adaptive", "bank", "check", str(POOLS / pool), "--strict"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "keys: A 2" in run.stdout


def test_each_content_rule_is_reported_by_item_and_field():
    items = [_content(key="B") for _ in range(20)]
    items[0] = _content(options=("Code it", "code  it.", "Query", "Skip"))
    items[1] = _content(key="C", options=("E11", "E10", "E11.9, with the complication coded first as instructed",
                                          "E13"))
    items[2] = _content(options=("One", "Two", "All of the above", "None"))
    items[3] = _content(options=("One", "Two", "Both A and B", "Three"), shuffle=False)  # kept in order: fine
    warnings = content_warnings(_bank(items))
    text = "\n".join(warnings)
    assert "item 'I0' (position 0), field 'content.options': options ['Code it', 'code  it.'] differ only" in text
    assert "item 'I1' (position 1), field 'content.options': the key (C) is by far the longest option" in text
    assert "item 'I2' (position 2), field 'content.shuffle': option 'All of the above'" in text
    assert "I3" not in text
    assert "B keys 16 (80%), outside 20%-30%" in text
    assert "D keys 0 (0%)" in text


def test_key_balance_is_not_judged_on_a_handful_of_items():
    assert content_warnings(_bank([_content(key="A") for _ in range(10)])) == []


def test_strict_check_fails_on_warnings_and_plain_check_does_not(tmp_path):
    path = tmp_path / "bank.json"
    _bank([_content(key="A") for _ in range(25)]).to_json(path)
    plain = subprocess.run([sys.executable, "-m", "adaptive", "bank", "check", str(path)], capture_output=True,
                           text=True, timeout=120)
    assert plain.returncode == 0 and "content warning" in plain.stdout
    strict = subprocess.run([sys.executable, "-m", "adaptive", "bank", "check", str(path), "--strict"],
                            capture_output=True, text=True, timeout=120)
    assert strict.returncode == 1 and "A keys 25 (100%)" in strict.stdout
