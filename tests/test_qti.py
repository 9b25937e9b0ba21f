"""QTI 3.0 interchange: both bundled pools round-trip exactly; hostile XML is refused; other interactions are
skipped by name; a package without the parameter companion imports as pretest items."""

import io
import zipfile
from pathlib import Path

import pytest

from adaptive import ItemBank
from adaptive.bank.qti import export_qti, import_qti
from adaptive.cli import main
from adaptive.exceptions import BankValidationError

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = """<?xml version="1.0" encoding="UTF-8"?>
<manifest xmlns="http://www.imsglobal.org/xsd/qti/qtiv3p0/imscp_v1p1" identifier="pkg"><resources>{}</resources>
</manifest>"""
CHOICE = """<?xml version="1.0" encoding="UTF-8"?>
<qti-assessment-item xmlns="http://www.imsglobal.org/xsd/imsqtiasi_v3p0" identifier="{ident}" title="{ident}">
 <qti-response-declaration identifier="RESPONSE" cardinality="{card}" base-type="identifier">
  <qti-correct-response><qti-value>{key}</qti-value></qti-correct-response>
 </qti-response-declaration>
 <qti-item-body>
  <p>Which code reports an initial encounter &amp; why?</p>
  <qti-choice-interaction response-identifier="RESPONSE" max-choices="{maxc}" shuffle="false">
   <qti-simple-choice identifier="c1">S52.501A</qti-simple-choice>
   <qti-simple-choice identifier="c2">S52.501D</qti-simple-choice>
   <qti-simple-choice identifier="c3">S52.501S</qti-simple-choice>
  </qti-choice-interaction>
 </qti-item-body>
</qti-assessment-item>"""
TEXT_ENTRY = """<?xml version="1.0" encoding="UTF-8"?>
<qti-assessment-item xmlns="http://www.imsglobal.org/xsd/imsqtiasi_v3p0" identifier="T1">
 <qti-item-body><p>Code: <qti-text-entry-interaction response-identifier="RESPONSE"/></p></qti-item-body>
</qti-assessment-item>"""


def _package(path, items: dict[str, str], manifest: str | None = None):
    res = "".join(f'<resource identifier="{k}" type="imsqti_item_xmlv3p0" href="items/{k}.xml">'
                  f'<file href="items/{k}.xml"/></resource>' for k in items)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("imsmanifest.xml", manifest or MANIFEST.format(res))
        for k, xml in items.items():
            zf.writestr(f"items/{k}.xml", xml)
    return path


@pytest.mark.parametrize("pool", ["cmcs", "cmrs"])
def test_bundled_pools_round_trip_exactly(pool, tmp_path):
    bank = ItemBank.load(ROOT / "item_pools" / pool)
    res = import_qti(export_qti(bank, tmp_path / f"{pool}.zip"))
    assert res.bank.to_json() == bank.to_json()  # ids, stems, options, keys, rationales, shuffle, parameters
    assert res.skipped == () and res.with_parameters == len(bank)
    with zipfile.ZipFile(tmp_path / f"{pool}.zip") as zf:
        names = zf.namelist()
    assert "imsmanifest.xml" in names and "adaptive/bank.json" in names
    assert sum(n.startswith("items/") for n in names) == len(bank)


def test_other_interactions_are_skipped_by_name(tmp_path):
    pkg = _package(tmp_path / "p.zip", {
        "MC1": CHOICE.format(ident="MC1", card="single", key="c1", maxc="1"),
        "MR1": CHOICE.format(ident="MR1", card="multiple", key="c2", maxc="2"),
        "T1": TEXT_ENTRY})
    res = import_qti(pkg)
    assert [it.id for it in res.bank.items] == ["MC1"]
    item = res.bank.items[0]
    assert item.content.options == ["S52.501A", "S52.501D", "S52.501S"] and item.content.key == "A"
    assert item.content.stem == "Which code reports an initial encounter & why?" and item.content.shuffle is False
    assert item.status == "pretest" and "calibrate before scoring" in item.provenance.note  # no companion
    skipped = dict(res.skipped)
    assert "multiple-response" in skipped["MR1"] and "qti-text-entry-interaction" in skipped["T1"]


@pytest.mark.parametrize("payload,kind", [
    ('<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<qti-assessment-item identifier="X">&xxe;'
     '</qti-assessment-item>', "external entity"),
    ('<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
     '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>\n'
     '<qti-assessment-item identifier="X">&lol3;</qti-assessment-item>', "entity expansion"),
])
def test_hostile_xml_is_refused(tmp_path, payload, kind):
    pkg = _package(tmp_path / "bad.zip", {"X": '<?xml version="1.0"?>\n' + payload})
    with pytest.raises(BankValidationError, match="refused") as err:
        import_qti(pkg)
    assert "items/X.xml" in str(err.value), kind
    hostile_manifest = '<?xml version="1.0"?>\n<!DOCTYPE m [<!ENTITY e SYSTEM "http://example.com/x">]><manifest/>'
    with pytest.raises(BankValidationError, match="imsmanifest.xml: refused"):
        import_qti(_package(tmp_path / "bad2.zip", {}, manifest=hostile_manifest))


def test_bad_packages_are_named(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    with pytest.raises(BankValidationError, match="not a zip package"):
        import_qti(tmp_path / "x.zip")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "hi")
    (tmp_path / "y.zip").write_bytes(buf.getvalue())
    with pytest.raises(BankValidationError, match="no imsmanifest.xml"):
        import_qti(tmp_path / "y.zip")
    with pytest.raises(BankValidationError, match="no single-response choice item"):
        import_qti(_package(tmp_path / "z.zip", {"T1": TEXT_ENTRY}))
    no_content = ItemBank(items=[{"id": "Q1", "a": 1.0, "b": 0.0}])
    with pytest.raises(BankValidationError, match="no authored content"):
        export_qti(no_content, tmp_path / "n.zip")


def test_commands(tmp_path, capsys):
    assert main(["bank", "export-qti", str(ROOT / "item_pools" / "cmrs"), str(tmp_path / "cmrs.zip")]) == 0
    assert main(["bank", "import-qti", str(tmp_path / "cmrs.zip"), "--out", str(tmp_path / "back.json")]) == 0
    assert ItemBank.from_json(tmp_path / "back.json").to_json() == ItemBank.load(ROOT / "item_pools" / "cmrs").to_json()
    assert "57 with parameters" in capsys.readouterr().out
    (tmp_path / "bad.zip").write_bytes(b"junk")
    assert main(["bank", "import-qti", str(tmp_path / "bad.zip"), "--out", str(tmp_path / "o.json")]) != 0
    assert "Traceback" not in capsys.readouterr().err
