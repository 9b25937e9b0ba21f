"""QTI 3.0 interchange of item content: IMS content packages in and out.

**Export** (:func:`export_qti`) writes a zip with

* ``imsmanifest.xml`` -- the IMS content package manifest (QTI 3.0 profile), one ``imsqti_item_xmlv3p0``
  resource per item;
* ``items/<identifier>.xml`` -- one ``qti-assessment-item`` per item: the stem as the item body's paragraph,
  a ``qti-choice-interaction`` (``max-choices="1"``, ``shuffle`` from the item's shuffle flag) with one
  ``qti-simple-choice`` per option (identifiers ``A``, ``B``, ... as authored), a ``qti-response-declaration``
  whose ``qti-correct-response`` is the key, the ``match_correct`` response-processing template, and the
  rationale as a ``qti-modal-feedback`` (identifier ``RATIONALE``);
* ``adaptive/bank.json`` -- the companion table: the bank without what the QTI items carry (IRT model and
  parameters, domain, code set, enemies, status, exposure, provenance, blueprint, scaling, and content
  metadata such as ``cognitive_level``), each item with the QTI identifier it was written under
  (``qti_identifier``).

**Import** (:func:`import_qti`) reads such a package, or any QTI 3.0 package of single-response choice items:
ids, stems, options, keys, rationales and shuffle flags come from the items, everything else from the
companion when the package has one. Items without a companion entry are imported as ``status = "pretest"``
with placeholder parameters (a 2PL with a = 1, b = 0) and a provenance note: calibrate them before scoring.
Other interactions and multiple-response items are skipped and named in :attr:`QtiImport.skipped`.

XML is parsed with ``defusedxml`` (the ``qti`` extra): DTDs, entity declarations and external references are
refused with a :class:`~adaptive.exceptions.BankValidationError`; the zip is read in memory with bounds on the
number of files and their sizes.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..exceptions import BankValidationError
from .schema import ItemBank

__all__ = ["export_qti", "import_qti", "QtiImport"]

NS_ITEM = "http://www.imsglobal.org/xsd/imsqtiasi_v3p0"
NS_CP = "http://www.imsglobal.org/xsd/qti/qtiv3p0/imscp_v1p1"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
ITEM_SCHEMA = "https://purl.imsglobal.org/spec/qti/v3p0/schema/xsd/imsqti_asiv3p0p1_v1p0.xsd"
CP_SCHEMA = "https://purl.imsglobal.org/spec/qti/v3p0/schema/xsd/imsqtiv3p0_imscpv1p2_v1p0.xsd"
MATCH_CORRECT = "https://purl.imsglobal.org/spec/qti/v3p0/rptemplates/match_correct"
COMPANION = "adaptive/bank.json"
#: bounds on what an imported package may hold
MAX_FILES, MAX_FILE_BYTES, MAX_TOTAL_BYTES = 20_000, 16 * 2**20, 512 * 2**20
#: the content fields the QTI item itself carries (the rest travel in the companion)
QTI_CONTENT = ("stem", "options", "key", "rationale", "shuffle")
_NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def _identifier(item_id: str, used: set[str]) -> str:
    ident = item_id if _NCNAME.match(item_id) else "I_" + re.sub(r"[^A-Za-z0-9_.\-]", "_", item_id)
    base, k = ident, 2
    while ident in used:
        ident, k = f"{base}_{k}", k + 1
    used.add(ident)
    return ident


def _item_xml(item, ident: str) -> bytes:
    c = item.content
    root = ET.Element("qti-assessment-item", {
        "xmlns": NS_ITEM, "xmlns:xsi": NS_XSI, "xsi:schemaLocation": f"{NS_ITEM} {ITEM_SCHEMA}",
        "identifier": ident, "title": item.id, "adaptive": "false", "time-dependent": "false", "xml:lang": "en-US"})
    decl = ET.SubElement(root, "qti-response-declaration", {"identifier": "RESPONSE", "cardinality": "single",
                                                            "base-type": "identifier"})
    if c.key is not None:
        ET.SubElement(ET.SubElement(decl, "qti-correct-response"), "qti-value").text = c.key
    out = ET.SubElement(root, "qti-outcome-declaration", {"identifier": "SCORE", "cardinality": "single",
                                                          "base-type": "float"})
    ET.SubElement(ET.SubElement(out, "qti-default-value"), "qti-value").text = "0"
    if c.rationale:
        ET.SubElement(root, "qti-outcome-declaration", {"identifier": "FEEDBACK", "cardinality": "single",
                                                        "base-type": "identifier"})
    body = ET.SubElement(root, "qti-item-body")
    ET.SubElement(body, "p").text = c.stem
    inter = ET.SubElement(body, "qti-choice-interaction", {"response-identifier": "RESPONSE", "max-choices": "1",
                                                          "shuffle": "true" if c.shuffle else "false"})
    for k, text in enumerate(c.options):
        ET.SubElement(inter, "qti-simple-choice", {"identifier": chr(ord("A") + k)}).text = text
    ET.SubElement(root, "qti-response-processing", {"template": MATCH_CORRECT})
    if c.rationale:
        fb = ET.SubElement(root, "qti-modal-feedback", {"outcome-identifier": "FEEDBACK", "identifier": "RATIONALE",
                                                        "show-hide": "show", "title": "Rationale"})
        ET.SubElement(ET.SubElement(fb, "qti-content-body"), "p").text = c.rationale
    ET.indent(root, space=" ")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"


def export_qti(bank: ItemBank, path: str | Path) -> Path:
    """Write ``bank`` as a QTI 3.0 content package (zip); see the module docstring. Items without content are
    refused (QTI carries what the candidate sees)."""
    missing = [it.id for it in bank.items if it.content is None or not it.content.options]
    if missing:
        raise BankValidationError([f"{len(missing)} item(s) have no authored content (stem and options), e.g. "
                                   f"{missing[:5]}; QTI carries what candidates see, so export items with content"])
    used: set[str] = set()
    idents = [_identifier(it.id, used) for it in bank.items]
    manifest = ET.Element("manifest", {"xmlns": NS_CP, "xmlns:xsi": NS_XSI,
                                       "xsi:schemaLocation": f"{NS_CP} {CP_SCHEMA}",
                                       "identifier": _identifier(f"{bank.name}-{bank.version}", set())})
    meta = ET.SubElement(manifest, "metadata")
    ET.SubElement(meta, "schema").text = "QTI Package"
    ET.SubElement(meta, "schemaversion").text = "3.0.0"
    ET.SubElement(manifest, "organizations")
    resources = ET.SubElement(manifest, "resources")
    path = Path(path)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for item, ident in zip(bank.items, idents, strict=True):
            href = f"items/{ident}.xml"
            zf.writestr(href, _item_xml(item, ident))
            res = ET.SubElement(resources, "resource", {"identifier": ident, "type": "imsqti_item_xmlv3p0",
                                                        "href": href})
            ET.SubElement(res, "file", {"href": href})
        companion = json.loads(bank.to_json())
        for rec, ident in zip(companion["items"], idents, strict=True):
            extra = {k: v for k, v in rec.pop("content", {}).items() if k not in QTI_CONTENT}
            if extra:  # content metadata QTI does not carry here (e.g. cognitive_level)
                rec["content"] = extra
            rec["qti_identifier"] = ident
        zf.writestr(COMPANION, json.dumps(companion, indent=1) + "\n")
        res = ET.SubElement(resources, "resource", {"identifier": "adaptive_companion", "href": COMPANION,
                                                    "type": "associatedcontent/learning-application-resource"})
        ET.SubElement(res, "file", {"href": COMPANION})
        ET.indent(manifest, space=" ")
        zf.writestr("imsmanifest.xml", b'<?xml version="1.0" encoding="UTF-8"?>\n'
                    + ET.tostring(manifest, encoding="utf-8") + b"\n")
    return path


@dataclass(frozen=True)
class QtiImport:
    """What :func:`import_qti` read: the bank, and the items it skipped with the reason."""

    bank: ItemBank
    skipped: tuple[tuple[str, str], ...]
    with_parameters: int

    def __repr__(self) -> str:
        return (f"QtiImport({len(self.bank)} items, {self.with_parameters} with parameters from the companion; "
                f"{len(self.skipped)} skipped)")


def _safe_parse(data: bytes, where: str):
    try:
        from defusedxml import DefusedXmlException
        from defusedxml.ElementTree import fromstring
    except ImportError:
        raise ImportError("reading QTI needs defusedxml (safe XML parsing): pip install 'adaptive-cat[qti]'") from None
    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as err:
        raise BankValidationError([f"{where}: refused: {type(err).__name__} ({err}); QTI packages need no DTD or "
                                   "entity declarations, so a file with them is not read"]) from None
    except ET.ParseError as err:
        raise BankValidationError([f"{where}: not well-formed XML ({err})"]) from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(el, name):
    return next((e for e in el.iter() if _local(e.tag) == name), None)


def _text(el) -> str:
    return "".join(el.itertext()).strip() if el is not None else ""


def _read_zip(path: Path) -> dict[str, bytes]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise BankValidationError([f"{path}: not a zip package ({err}); give the .zip a QTI export wrote"]) from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_FILES:
            raise BankValidationError([f"{path}: {len(infos)} files; at most {MAX_FILES} are read"])
        total = sum(i.file_size for i in infos)
        big = [i.filename for i in infos if i.file_size > MAX_FILE_BYTES]
        if big or total > MAX_TOTAL_BYTES:
            raise BankValidationError([f"{path}: files too large to be item XML ({big[:3] or f'{total} bytes'}); "
                                       "refused"])
        out = {}
        for i in infos:
            if i.filename.endswith((".xml", ".json")):
                with zf.open(i) as fh:
                    data = fh.read(MAX_FILE_BYTES + 1)
                if len(data) > MAX_FILE_BYTES:  # the header lied about the size
                    raise BankValidationError([f"{path}: {i.filename} expands beyond {MAX_FILE_BYTES} bytes; refused"])
                out[i.filename] = data
        return out


def _parse_item(root, where: str):
    """(identifier, title, content dict) of a single-response choice item, or (identifier, None, reason)."""
    ident = root.get("identifier") or where
    if _local(root.tag) != "qti-assessment-item":
        return ident, None, f"not a qti-assessment-item ({_local(root.tag)})"
    interactions = [e for e in root.iter() if _local(e.tag).endswith("-interaction")]
    if len(interactions) != 1 or _local(interactions[0].tag) != "qti-choice-interaction":
        kinds = ", ".join(sorted({_local(e.tag) for e in interactions})) or "no interaction"
        return ident, None, f"not a single choice interaction ({kinds})"
    inter = interactions[0]
    decl = next((e for e in root if _local(e.tag) == "qti-response-declaration"), None)
    if inter.get("max-choices", "1") != "1" or (decl is not None and decl.get("cardinality", "single") != "single"):
        return ident, None, "multiple-response choice item (max-choices or cardinality other than single)"
    choices = [e for e in inter if _local(e.tag) == "qti-simple-choice"]
    if len(choices) < 2:
        return ident, None, "fewer than two choices"
    ids = [c.get("identifier") for c in choices]
    correct = [_text(v) for v in decl.iter() if _local(v.tag) == "qti-value"] if decl is not None else []
    correct = [v for v in correct if v] if decl is not None and _find(decl, "qti-correct-response") is not None else []
    key = None
    if correct:
        if correct[0] not in ids:
            return ident, None, f"correct response {correct[0]!r} is not one of the choices"
        key = chr(ord("A") + ids.index(correct[0]))
    body = _find(root, "qti-item-body")
    stem_parts = [_text(e) for e in (body if body is not None else []) if _local(e.tag) != "qti-choice-interaction"]
    prompt = _find(inter, "qti-prompt")
    stem = "\n".join(p for p in stem_parts + ([_text(prompt)] if prompt is not None else []) if p)
    rationale = None
    for fb in root.iter():
        if _local(fb.tag) in ("qti-modal-feedback", "qti-feedback-block") and \
                (fb.get("identifier") == "RATIONALE" or rationale is None):
            rationale = _text(fb) or rationale
    content = {"stem": stem or "(no stem)", "options": [_text(c) for c in choices], "key": key,
               "rationale": rationale, "shuffle": inter.get("shuffle", "false") == "true"}
    return ident, root.get("title"), content


def import_qti(path: str | Path) -> QtiImport:
    """Read a QTI 3.0 content package; see the module docstring."""
    path = Path(path)
    files = _read_zip(path)
    if "imsmanifest.xml" not in files:
        raise BankValidationError([f"{path}: no imsmanifest.xml at the top of the package; is it a QTI content "
                                   "package?"])
    manifest = _safe_parse(files["imsmanifest.xml"], f"{path}: imsmanifest.xml")
    hrefs = [r.get("href") for r in manifest.iter() if _local(r.tag) == "resource"
             and (r.get("type") or "").startswith("imsqti_item_xml")]
    companion: dict = {}
    if COMPANION in files:
        try:
            companion = json.loads(files[COMPANION])
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise BankValidationError([f"{path}: {COMPANION} is not valid JSON ({err})"]) from None
    by_ident = {rec.get("qti_identifier", rec.get("id")): rec for rec in companion.get("items", [])}
    items, skipped = [], []
    with_params = 0
    for href in hrefs:
        if href not in files:
            skipped.append((href or "?", "listed in the manifest but missing from the package"))
            continue
        root = _safe_parse(files[href], f"{path}: {href}")
        ident, title, content = _parse_item(root, href)
        if title is None and isinstance(content, str):
            skipped.append((ident, content))
            continue
        rec = by_ident.get(ident)
        if rec is not None:
            item = {k: v for k, v in rec.items() if k != "qti_identifier"}
            content = {**item.pop("content", {}), **content}
            with_params += 1
        else:
            item = {"id": title if title and title.strip() else ident, "model": "2pl", "a": 1.0, "b": 0.0,
                    "status": "pretest",
                    "provenance": {"method": "placeholder", "note": f"imported from QTI package {path.name} "
                                   "without parameters (a = 1, b = 0); calibrate before scoring"}}
        item["content"] = content
        items.append(item)
    if not items:
        detail = "; ".join(f"{i}: {r}" for i, r in skipped[:5])
        raise BankValidationError([f"{path}: no single-response choice item to import ({detail or 'no items'})"])
    meta = {k: v for k, v in companion.items() if k != "items"}
    meta.setdefault("name", path.stem)
    bank = ItemBank.from_dict({**meta, "items": items}, source=str(path))
    return QtiImport(bank=bank, skipped=tuple(skipped), with_parameters=with_params)
