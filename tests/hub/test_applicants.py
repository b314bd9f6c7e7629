"""The seeded portal simulator: determinism, the planned defects and nothing else wrong."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import schemas
from hub.simulators.applicants import (
    NANJING_DISTRICTS,
    SUBMISSION_FILE,
    generate_batch,
    write_expected,
)
from rules.identifiers import (
    is_valid_org_code,
    is_valid_resident_id,
    is_valid_uscc,
    resident_id_birth_date,
    resident_id_check_char,
    uscc_check_char,
)

CATALOGUE_FILE = Path(__file__).parents[2] / "hub" / "defaults" / "catalogue.json"
CATALOGUE: list[dict[str, Any]] = json.loads(CATALOGUE_FILE.read_text("utf-8"))
ITEMS = {item["code"]: item for item in CATALOGUE}
AGENCY = "3201000001"
SUBMITTED_ON = date(2026, 11, 23)
SEED = 20261123
MAGIC = {
    "application/pdf": b"%PDF-1.7",
    "image/jpeg": b"\xff\xd8\xff\xe0",
    "image/png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR",
}
BEIJING = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    drop = tmp_path_factory.mktemp("drop")
    return drop, generate_batch(drop, 200, SEED, CATALOGUE, AGENCY, SUBMITTED_ON)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _envelope(folder: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((folder / SUBMISSION_FILE).read_text("utf-8"))
    return document


def _readable(folder: Path) -> bool:
    try:
        _envelope(folder)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return True


def _problems(folder: Path) -> set[str]:
    """What an independent intake finds wrong with a dropped application."""
    if not _readable(folder):
        return {"SUBMISSION_UNREADABLE"}
    envelope = _envelope(folder)
    problems = {f"SCHEMA_{e.keyword.upper()}" for e in schemas.errors("application", envelope)}
    applicant = envelope["applicant"]
    if applicant["id_type"] == "resident_id" and not is_valid_resident_id(applicant["id_number"]):
        problems.add("ID_CHECK_DIGIT")
    if applicant["id_type"] == "uscc" and not is_valid_uscc(applicant["id_number"]):
        problems.add("USCC_CHECK_DIGIT")
    contact = envelope.get("contact")
    if contact is not None and not is_valid_resident_id(contact["id_number"]):
        problems.add("CONTACT_ID")
    item = ITEMS[envelope["power_code"]]
    if item["state"] == "T":
        problems.add("ITEM_SUSPENDED")
    rules = {rule["material_code"]: rule for rule in item["materials"]}
    declared = {material["material_code"] for material in envelope["materials"]}
    if any(rule["required"] and code not in declared for code, rule in rules.items()):
        problems.add("MATERIAL_MISSING")
    for material in envelope["materials"]:
        if material["media_type"] not in rules[material["material_code"]]["media_types"]:
            problems.add("MATERIAL_TYPE")
        if not (folder / material["file"]).read_bytes().startswith(MAGIC[material["media_type"]]):
            problems.add("ATTACHMENT_TYPE")
    return problems


def _planned(expected: dict[str, Any]) -> set[str]:
    if expected["outcome"] == "quarantined":
        return {expected["code"]}
    return set(expected.get("codes", ()))


def test_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    first = generate_batch(tmp_path / "a", 60, SEED, CATALOGUE, AGENCY, SUBMITTED_ON)
    second = generate_batch(tmp_path / "b", 60, SEED, CATALOGUE, AGENCY, SUBMITTED_ON)
    other = generate_batch(tmp_path / "c", 60, SEED + 1, CATALOGUE, AGENCY, SUBMITTED_ON)
    assert first == second
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    assert _tree(tmp_path / "a") != _tree(tmp_path / "c")
    assert list(first) == list(other)  # the serials do not depend on the seed


def test_outcome_counts(batch: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    _, truth = batch
    counts = Counter(json.dumps(expected, sort_keys=True) for expected in truth.values())
    k = 200 // 50
    assert counts == {
        '{"outcome": "accepted"}': 200 - 8 * k,
        '{"codes": ["ID_CHECK_DIGIT"], "outcome": "rejected"}': k,
        '{"codes": ["USCC_CHECK_DIGIT"], "outcome": "rejected"}': k,
        '{"codes": ["ITEM_SUSPENDED"], "outcome": "rejected"}': k,
        '{"codes": ["MATERIAL_MISSING"], "outcome": "rejected"}': k,
        '{"codes": ["SCHEMA_MINLENGTH"], "outcome": "rejected"}': k,
        '{"codes": ["ID_CHECK_DIGIT", "MATERIAL_MISSING"], "outcome": "rejected"}': k,
        '{"code": "SUBMISSION_UNREADABLE", "outcome": "quarantined"}': k,
        '{"code": "ATTACHMENT_TYPE", "outcome": "quarantined"}': k,
    }


def test_each_folder_is_complete(batch: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    drop, truth = batch
    assert sorted(p.name for p in drop.iterdir()) == sorted(truth)
    assert [f"NET20261123{n:06d}" for n in range(1, 201)] == list(truth)
    assert not list(drop.rglob("*.part"))
    assert all((drop / net_id / SUBMISSION_FILE).is_file() for net_id in truth)


def test_only_the_planned_defects_are_present(
    batch: tuple[Path, dict[str, dict[str, Any]]],
) -> None:
    drop, truth = batch
    for net_id, expected in truth.items():
        assert _problems(drop / net_id) == _planned(expected), net_id


def test_valid_records_pass_schema_and_check_digits(
    batch: tuple[Path, dict[str, dict[str, Any]]],
) -> None:
    drop, truth = batch
    accepted = [net_id for net_id, e in truth.items() if e["outcome"] == "accepted"]
    organisations = minors = 0
    for net_id in accepted:
        envelope = _envelope(drop / net_id)
        assert list(schemas.errors("application", envelope)) == []
        assert schemas.fast_check("application")(envelope)
        assert envelope["net_id"] == net_id
        assert envelope["agency_code"] == AGENCY
        assert ITEMS[envelope["power_code"]]["state"] == "A"
        submitted_at = datetime.fromisoformat(envelope["submitted_at"])
        assert submitted_at.utcoffset() == timedelta(hours=8)
        assert submitted_at.date() == SUBMITTED_ON
        assert time(8, 30) <= submitted_at.time() <= time(17, 30)
        applicant = envelope["applicant"]
        if applicant["type"] == "organisation":
            organisations += 1
            assert applicant["id_type"] == "uscc"
            assert is_valid_uscc(applicant["id_number"])
            assert applicant["name"].startswith("南京") and applicant["name"].endswith("公司")
        for person in (p for p in (applicant, envelope.get("contact")) if p):
            if person["type"] == "person":
                minors += _assert_realistic_person(person)
    assert 0.1 < organisations / len(accepted) < 0.3
    # A few accepted applications come from minors (never published); nobody else is one.
    assert minors == len(truth) // 50


def _assert_realistic_person(person: dict[str, Any]) -> bool:
    number = person["id_number"]
    assert is_valid_resident_id(number)
    assert number[:6] in NANJING_DISTRICTS
    born = resident_id_birth_date(number)
    assert born is not None
    birthday_to_come = (SUBMITTED_ON.month, SUBMITTED_ON.day) < (born.month, born.day)
    age = SUBMITTED_ON.year - born.year - birthday_to_come
    assert 16 <= age <= 75
    assert 2 <= len(person["name"]) <= 4
    assert person["mobile"][:2] in ("13", "15", "18") and len(person["mobile"]) == 11
    assert person["address"].startswith("南京市" + NANJING_DISTRICTS[number[:6]][0])
    return age < 18


def test_broken_identifiers_differ_only_in_the_check_character(
    batch: tuple[Path, dict[str, dict[str, Any]]],
) -> None:
    drop, truth = batch
    for net_id, expected in truth.items():
        codes = expected.get("codes", [])
        if "ID_CHECK_DIGIT" in codes:
            envelope = _envelope(drop / net_id)
            assert list(schemas.errors("application", envelope)) == []
            number = envelope["applicant"]["id_number"]
            assert envelope["applicant"]["type"] == "person"
            assert number[:17].isdigit() and resident_id_birth_date(number) is not None
            assert resident_id_check_char(number[:17]) != number[17]
        if "USCC_CHECK_DIGIT" in codes:
            envelope = _envelope(drop / net_id)
            code = envelope["applicant"]["id_number"]
            assert envelope["applicant"]["type"] == "organisation"
            assert is_valid_org_code(code[8:17])
            assert uscc_check_char(code[:17]) != code[17]


def test_attachments_match_their_declarations(
    batch: tuple[Path, dict[str, dict[str, Any]]],
) -> None:
    drop, truth = batch
    readable = [net_id for net_id in truth if _readable(drop / net_id)]
    assert len(readable) == 200 - 4
    for net_id in readable:
        folder = drop / net_id
        materials = _envelope(folder)["materials"]
        on_disk = {p.name for p in folder.iterdir()} - {SUBMISSION_FILE}
        assert on_disk == {material["file"] for material in materials}
        for material in materials:
            content = (folder / material["file"]).read_bytes()
            assert hashlib.sha256(content).hexdigest() == material["sha256"]
            assert len(content) == material["size"]
            assert 1024 <= len(content) <= 8192


def test_file_formats_are_real(batch: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    drop, truth = batch
    accepted = [net_id for net_id, e in truth.items() if e["outcome"] == "accepted"]
    contents = [p.read_bytes() for net_id in accepted for p in (drop / net_id).iterdir()]
    pdfs = [c for c in contents if c.startswith(b"%PDF-1.7")]
    jpegs = [c for c in contents if c.startswith(b"\xff\xd8\xff\xe0")]
    pngs = [c for c in contents if c.startswith(b"\x89PNG\r\n\x1a\n")]
    assert pdfs and jpegs and pngs
    assert all(c.rstrip().endswith(b"%%EOF") for c in pdfs)
    assert all(c[6:11] == b"JFIF\x00" and c.endswith(b"\xff\xd9") for c in jpegs)
    assert all(c[12:16] == b"IHDR" and c.endswith(b"IEND\xaeB`\x82") for c in pngs)


def test_quarantined_submissions(batch: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    drop, truth = batch
    for net_id, expected in truth.items():
        if expected.get("code") == "SUBMISSION_UNREADABLE":
            assert not _readable(drop / net_id)
        if expected.get("code") == "ATTACHMENT_TYPE":
            materials = _envelope(drop / net_id)["materials"]
            disguised = [
                m for m in materials
                if (drop / net_id / m["file"]).read_bytes().startswith(b"MZ")
            ]
            assert len(disguised) == 1
            assert disguised[0]["media_type"] == "application/pdf"


def test_suspended_item_records_use_the_suspended_item(
    batch: tuple[Path, dict[str, dict[str, Any]]],
) -> None:
    drop, truth = batch
    suspended = [n for n, e in truth.items() if e.get("codes") == ["ITEM_SUSPENDED"]]
    assert len(suspended) == 4
    for net_id in suspended:
        assert ITEMS[_envelope(drop / net_id)["power_code"]]["state"] == "T"


@pytest.mark.parametrize(("count", "accepted"), [(0, 0), (5, 5), (8, 0), (49, 41), (50, 42)])
def test_small_batches(tmp_path: Path, count: int, accepted: int) -> None:
    truth = generate_batch(tmp_path, count, SEED, CATALOGUE, AGENCY, SUBMITTED_ON)
    assert len(truth) == count
    assert sum(e["outcome"] == "accepted" for e in truth.values()) == accepted


def test_a_second_batch_continues_the_serials(tmp_path: Path) -> None:
    generate_batch(tmp_path, 3, SEED, CATALOGUE, AGENCY, SUBMITTED_ON)
    with pytest.raises(FileExistsError):
        generate_batch(tmp_path, 3, SEED, CATALOGUE, AGENCY, SUBMITTED_ON)
    later = generate_batch(tmp_path, 3, SEED, CATALOGUE, AGENCY, SUBMITTED_ON, first_serial=4)
    assert list(later) == [f"NET20261123{n:06d}" for n in (4, 5, 6)]


def test_write_expected(tmp_path: Path) -> None:
    truth = generate_batch(tmp_path / "drop", 10, SEED, CATALOGUE, AGENCY, SUBMITTED_ON)
    write_expected(tmp_path / "out" / "expected.json", truth)
    assert json.loads((tmp_path / "out" / "expected.json").read_text("utf-8")) == truth
