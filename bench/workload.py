"""The benchmark workload: a seeded province-day of online applications (网上申请) across a
realistic catalogue, written into the portal drop folder the way the public portal does.

- Catalogue: ``AGENCIES`` agencies × ``ITEMS_PER_AGENCY`` power items (valid per
  ``power_item.schema.json``), categories in the proportions of real catalogues, about 3%
  of items suspended (挂起) and 1% abolished (废止). Most online services need no upload;
  about a third of the items require a material file.
- Applications: about 1.5 KB of compact JSON each (envelope plus the item's form data);
  ``ATTACHED_SHARE`` carry files of about 50 KB with real PDF/JPEG/PNG headers;
  ``INVALID_SHARE`` are invalid in the ways real portals see (bad check digits, missing
  materials, suspended items, schema violations), each with the reason codes it must get.

The portal drop is written without a per-file fsync (``durable=False`` semantics): the bench
measures the hub, not how fast this machine can make a million files durable. The layout is
exactly the portal's (``<NET_ID>/submission.json`` renamed into place last), so intake
does the same work as in production.

    python -m bench.workload --records 10000 --out /tmp/drop   # write a drop, print its profile
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import struct
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine

from hub.progress import Progress
from hub.simulators.applicants import (
    LINES_OF_BUSINESS,
    NANJING_DISTRICTS,
    OFFICE_HOURS,
    SUMMARY_TEMPLATES,
    TRADE_NAMES,
    _address,
    _clock,
    _pdf_file,
    _person,
    _person_name,
)
from rules.identifiers import (
    RESIDENT_ID_CHECK,
    USCC_ALPHABET,
    org_code_check_char,
    uscc_check_char,
)

AGENCIES = 40
ITEMS_PER_AGENCY = 50
ATTACHED_SHARE = 0.05
ATTACHMENT_BYTES = 50 * 1024
INVALID_SHARE = 0.03
SUBMITTED_ON = date(2026, 11, 20)
# The simulated case-processing system works through every transition due by this moment:
# every case of the day carried to its end (all its status changes and 双公示 records), as
# in steady state, where a day publishes as many whole case lives as it receives. Fixed, so
# the work does not depend on the day or the hour the benchmark runs.
PROCESSED_UNTIL = datetime(2026, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=8)))
SUBMISSION_FILE = "submission.json"

# Category shares of a provincial catalogue (penalties and enforcement dominate, DOMAIN.md).
CATEGORY_WEIGHTS = {"XK": 22, "CF": 40, "QZ": 14, "ZS": 4, "JL": 4, "QR": 5, "CJ": 2, "QT": 4, "SP": 3, "GF": 2}
DISCLOSURE = {
    "XK": ("conditions", "fee", "flow_chart", "service_guide", "forms", "faq"),
    "CF": ("procedure", "penalty_kinds", "time_limit"),
    "ZS": ("conditions", "procedure", "implementing_body"),
    "QZ": ("procedure", "time_limit"),
}
DEPARTMENTS = (
    "交通运输局", "市场监督管理局", "生态环境局", "住房和城乡建设局", "卫生健康委员会", "教育局",
    "公安局", "民政局", "人力资源和社会保障局", "自然资源和规划局", "农业农村局", "水务局",
    "文化和旅游局", "应急管理局", "城市管理局", "商务局", "财政局", "税务局", "医疗保障局", "体育局",
)
CITIES = ("南京", "无锡", "徐州", "常州", "苏州", "南通", "连云港", "淮安", "盐城", "扬州", "镇江", "泰州", "宿迁")
SUBJECTS = (
    "道路运输经营", "建筑施工", "食品经营", "排污", "医疗机构执业", "民办学校办学", "养老机构设立",
    "人力资源服务", "取水", "林木采伐", "渔业捕捞", "旅行社经营", "危险化学品经营", "户外广告设置",
    "城市道路占用", "药品零售", "出版物经营", "娱乐场所经营", "建设工程规划", "特种设备使用",
)
MATERIALS = (
    ("APP_FORM", "申请书", ("application/pdf",)),
    ("ID_COPY", "申请人身份证明", ("application/pdf", "image/jpeg", "image/png")),
    ("LICENCE_COPY", "营业执照复印件", ("application/pdf", "image/jpeg")),
    ("SITE_PHOTO", "经营场所照片", ("image/jpeg", "image/png")),
    ("PLAN", "建设方案", ("application/pdf",)),
)
# Invalid kinds and the reason codes each must get; realistic mixes of what portals see.
INVALID_KINDS: dict[str, tuple[str, ...]] = {
    "bad_resident_id": ("ID_CHECK_DIGIT",),
    "bad_credit_code": ("USCC_CHECK_DIGIT",),
    "missing_material": ("MATERIAL_MISSING",),
    "suspended_item": ("ITEM_SUSPENDED",),
    "short_summary": ("SCHEMA_MINLENGTH",),
    "bad_postcode": ("SCHEMA_PATTERN",),
}
_MEDIA_EXTENSION = {"application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png"}


# --- catalogue ------------------------------------------------------------------------


def agency_codes(count: int = AGENCIES) -> list[str]:
    """10-character agency codes (province 32, then city and serial)."""
    return [f"32{(i % 13) + 1:02d}{i + 1:06d}" for i in range(count)]


def catalogue_documents(
    seed: int = 2026, agencies: int = AGENCIES, items_per_agency: int = ITEMS_PER_AGENCY
) -> list[dict[str, Any]]:
    """A province catalogue: ``agencies`` × ``items_per_agency`` power item documents."""
    rng = random.Random(f"catalogue:{seed}")
    categories = list(CATEGORY_WEIGHTS)
    weights = list(CATEGORY_WEIGHTS.values())
    documents = []
    for index, agency in enumerate(agency_codes(agencies)):
        department = DEPARTMENTS[index % len(DEPARTMENTS)]
        city = CITIES[index % len(CITIES)]
        org_body = f"{10_000_000 + index * 7_919:08d}"
        credit_body = f"11{agency[:6]}{org_body}{org_code_check_char(org_body)}"
        credit_code = credit_body + uscc_check_char(credit_body)
        for serial in range(1, items_per_agency + 1):
            category = rng.choices(categories, weights)[0]
            statutory = rng.choice((10, 15, 20, 30, 60))
            roll = rng.random()
            state = "T" if roll < 0.03 else "X" if roll < 0.04 else "A"
            required_upload = rng.random() < 0.35
            materials: list[dict[str, Any]] = []
            for code, name, media_types in rng.sample(MATERIALS, rng.randint(1, 3)):
                materials.append({
                    "material_code": code, "name": name,
                    "required": required_upload and not materials, "media_types": list(media_types),
                })
            subject = SUBJECTS[rng.randrange(len(SUBJECTS))]
            documents.append({
                "code": f"{credit_code}{category}{serial:011d}",
                "version": 1,
                "name": f"{subject}{'许可' if category == 'XK' else '事项'}（{city}{department}）",
                "category": category,
                "state": state,
                "agency_code": agency,
                "legal_basis": "《中华人民共和国行政许可法》" if category == "XK" else "《中华人民共和国行政处罚法》",
                "office": "行政审批处",
                "place": f"{city}市民中心{rng.randint(1, 5)}楼",
                "phone": f"025-{rng.randrange(10**8):08d}",
                "supervision_phone": f"025-{rng.randrange(10**8):08d}",
                "statutory_limit_days": statutory,
                "promised_limit_days": rng.randint(statutory // 2, statutory),
                "limit_unit": "working_days",
                "disclosure": {key: "见办事指南" for key in DISCLOSURE.get(category, ("procedure", "service_guide", "flow_chart"))},
                "materials": materials,
            })
    return documents


# --- applications ---------------------------------------------------------------------


@dataclass
class Workload:
    """What was dropped and what the hub must make of it."""

    records: int
    attached: int
    attachment_bytes: int
    envelope_bytes: int
    expected: Counter[str]  # "accepted", and each reason code of the rejected
    rejected: int


class _Pools:
    def __init__(self, documents: list[dict[str, Any]]) -> None:
        in_use = [d for d in documents if d["state"] == "A"]
        self.no_upload = [d for d in in_use if not any(m["required"] for m in d["materials"])]
        self.with_upload = [d for d in in_use if any(m["required"] for m in d["materials"])]
        self.suspended = [
            d for d in documents if d["state"] == "T" and not any(m["required"] for m in d["materials"])
        ]


def _invalid_plan(count: int, rng: random.Random) -> list[str | None]:
    invalid = round(count * INVALID_SHARE)
    kinds = list(INVALID_KINDS)
    plan: list[str | None] = [kinds[i % len(kinds)] for i in range(invalid)]
    plan += [None] * (count - invalid)
    rng.shuffle(plan)
    return plan


def _organisation(rng: random.Random, *, broken: bool = False) -> dict[str, Any]:
    area = rng.choice(list(NANJING_DISTRICTS))
    org_body = f"{rng.randrange(10**8):08d}"
    body = f"91{area}{org_body}{org_code_check_char(org_body)}"
    code = body + uscc_check_char(body)
    if broken:
        code = code[:17] + rng.choice(USCC_ALPHABET.replace(code[17], ""))
    suffix = rng.choice(("有限公司", "有限责任公司"))
    return {
        "type": "organisation",
        "name": f"南京{rng.choice(TRADE_NAMES)}{rng.choice(LINES_OF_BUSINESS)}{suffix}",
        "id_type": "uscc", "id_number": code,
        "phone": f"025-{rng.choice('568')}{rng.randrange(10**7):07d}",
        "address": _address(rng, area, home=False), "postcode": NANJING_DISTRICTS[area][1],
    }


def _form(rng: random.Random) -> dict[str, Any]:
    """The item's own form data (事项表单): the bulk of a real submission."""
    return {
        "business_scope": "、".join(rng.sample(SUBJECTS, 4)) + "及相关配套服务",
        "registered_capital_wan": rng.randint(10, 50_000),
        "employees": rng.randint(1, 2_000),
        "site_area_m2": rng.randint(20, 20_000),
        "vehicles": [f"苏A{rng.randrange(10**5):05d}" for _ in range(rng.randint(0, 3))],
        "legal_representative": _person_name(rng),
        "statement": "本人（单位）承诺所填写内容及提交材料真实、合法、有效，如有虚假愿承担相应法律责任。",
        "premises": f"南京市{rng.choice(list(NANJING_DISTRICTS.values()))[0]}{rng.randint(1, 399)}号{rng.randint(1, 30)}幢",
        "certificates": [f"苏{rng.choice(CITIES)}许字（2026）第{rng.randrange(10**6):06d}号" for _ in range(2)],
        "opening_hours": "周一至周五 08:30-17:30，周六 09:00-12:00",
        "email": f"service{rng.randrange(10**6):06d}@example.cn",
        "remarks": "申请人已阅读办事指南并知悉办理时限、收费标准及监督投诉渠道，同意通过网上办事大厅接收办理结果通知。",
    }


def _pdf(rng: random.Random, size: int) -> bytes:
    text = rng.randbytes(max(0, (size - 600) // 2)).hex().encode("ascii")
    return _pdf_file(b"BT /F1 8 Tf 50 400 Td (" + text + b") Tj ET")


def _jpeg(rng: random.Random, size: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H5sBBBHHBB", 16, b"JFIF\x00", 1, 1, 0, 72, 72, 0, 0)
    out = bytearray(b"\xff\xd8" + app0)
    while len(out) < size - 4:
        filler = rng.randbytes(min(65000, size - 4 - len(out) - 4))
        out += b"\xff\xfe" + struct.pack(">H", len(filler) + 2) + filler
    return bytes(out + b"\xff\xd9")


def _png(rng: random.Random, size: int) -> bytes:
    side = max(20, int((size / 3) ** 0.5))
    rows = b"".join(b"\x00" + rng.randbytes(side * 3) for _ in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 1)) + chunk(b"IEND", b"")


_MAKERS = {"application/pdf": _pdf, "image/jpeg": _jpeg, "image/png": _png}


def applications(
    count: int, seed: int, documents: list[dict[str, Any]], *, submitted_on: date = SUBMITTED_ON
) -> Iterator[tuple[dict[str, Any], dict[str, bytes], tuple[str, ...]]]:
    """Each application in NET_ID order: (envelope, attachment files by name, expected codes)."""
    rng = random.Random(f"applications:{seed}")
    pools = _Pools(documents)
    plan = _invalid_plan(count, rng)
    attach_every = round(1 / ATTACHED_SHARE)
    for serial, kind in enumerate(plan, start=1):
        attached = serial % attach_every == 0 or kind == "missing_material"
        if kind == "suspended_item":
            item = rng.choice(pools.suspended)
        elif attached:
            item = rng.choice(pools.with_upload)
        else:
            item = rng.choice(pools.no_upload)
        if kind == "bad_credit_code" or (kind is None and rng.random() < 0.2):
            applicant = _organisation(rng, broken=kind == "bad_credit_code")
        else:
            applicant = _person(rng, submitted_on)
            if kind == "bad_resident_id":
                number = applicant["id_number"]
                applicant["id_number"] = number[:17] + rng.choice(RESIDENT_ID_CHECK.replace(number[17], ""))
        if kind == "bad_postcode":
            applicant["postcode"] = applicant["postcode"][:5]
        net_id = f"NET{submitted_on:%Y%m%d}{serial:07d}"
        start, end = rng.choice(OFFICE_HOURS)
        summary = rng.choice(SUMMARY_TEMPLATES).format(applicant=applicant["name"], item=item["name"])
        envelope: dict[str, Any] = {
            "net_id": net_id,
            "submitted_at": f"{submitted_on.isoformat()}T{_clock(rng.randrange(start, end))}+08:00",
            "channel": 1,
            "power_code": item["code"],
            "agency_code": item["agency_code"],
            "case_name": f"{applicant['name']}{item['name']}申请",
            "summary": "申请" if kind == "short_summary" else summary,
            "applicant": applicant,
            "form": _form(rng),
        }
        if applicant["type"] == "organisation":
            envelope["contact"] = _person(rng, submitted_on)
        files: dict[str, bytes] = {}
        materials = []
        if attached:
            rules = [m for m in item["materials"] if m["required"]]
            if kind == "missing_material":
                rules = [m for m in item["materials"] if not m["required"]]
            for index, rule in enumerate(rules):
                media_type = rng.choice(rule["media_types"])
                content = _MAKERS[media_type](rng, ATTACHMENT_BYTES // len(rules))
                name = f"{index + 1}{_MEDIA_EXTENSION[media_type]}"
                files[name] = content
                materials.append({
                    "material_code": rule["material_code"], "name": rule["name"], "file": name,
                    "sha256": hashlib.sha256(content).hexdigest(), "media_type": media_type,
                    "size": len(content),
                })
        envelope["materials"] = materials
        yield envelope, files, INVALID_KINDS[kind] if kind else ()


def write_drop(
    drop: Path, count: int, seed: int, documents: list[dict[str, Any]], *, submitted_on: date = SUBMITTED_ON
) -> Workload:
    """Write the portal drop: one folder per submission, attachments first and
    ``submission.json`` renamed into place last, without fsync (see the module docstring)."""
    drop.mkdir(parents=True, exist_ok=True)

    def put(net_id: str, submitted_at: str, document: bytes, files: dict[str, bytes]) -> None:
        folder = drop / net_id
        folder.mkdir()
        for name, content in files.items():
            (folder / name).write_bytes(content)
        part = folder / (SUBMISSION_FILE + ".part")
        part.write_bytes(document)
        os.rename(part, folder / SUBMISSION_FILE)

    return _write(count, seed, documents, submitted_on, put, lambda: None)


def write_front_db(
    engine: Engine, store: Path, count: int, seed: int, documents: list[dict[str, Any]], *,
    submitted_on: date = SUBMITTED_ON, batch: int = 10_000,
) -> Workload:
    """Write the portal's front database (前置库) as the portal does: each attachment into the
    content-addressed store first (without fsync, as the drop), then the rows, ``batch`` per
    transaction (docs/front-database.md)."""
    from connectors.db import transaction
    from connectors.front_db import insert_submissions, store_attachment

    rows: list[dict[str, Any]] = []

    def flush() -> None:
        if rows:
            with transaction(engine) as connection:
                insert_submissions(connection, rows)
            rows.clear()

    def put(net_id: str, submitted_at: str, document: bytes, files: dict[str, bytes]) -> None:
        for content in files.values():
            store_attachment(store, content, durable=False)
        rows.append({"net_id": net_id, "submitted_at": submitted_at, "envelope": document.decode("utf-8")})
        if len(rows) >= batch:
            flush()

    return _write(count, seed, documents, submitted_on, put, flush)


def _write(
    count: int, seed: int, documents: list[dict[str, Any]], submitted_on: date,
    put: Callable[[str, str, bytes, dict[str, bytes]], None], done: Callable[[], None],
) -> Workload:
    expected: Counter[str] = Counter()
    attached = attachment_bytes = envelope_bytes = rejected = 0
    progress = Progress("workload", count)
    for envelope, files, codes in applications(count, seed, documents, submitted_on=submitted_on):
        progress.advance()
        document = orjson.dumps(envelope)
        envelope_bytes += len(document)
        attachment_bytes += sum(len(content) for content in files.values())
        put(envelope["net_id"], envelope["submitted_at"], document, files)
        attached += bool(files)
        if codes:
            rejected += 1
            expected.update(codes)
        else:
            expected["accepted"] += 1
    done()
    progress.finish()
    return Workload(count, attached, attachment_bytes, envelope_bytes, expected, rejected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    work = write_drop(args.out, args.records, args.seed, catalogue_documents(args.seed))
    seconds = time.perf_counter() - started
    print(f"{work.records:,} applications in {seconds:.1f} s; {work.envelope_bytes / work.records:,.0f} B "
          f"per envelope; {work.attached:,} with attachments ({work.attachment_bytes / max(1, work.attached):,.0f} B "
          f"each); {work.rejected:,} invalid: {dict(work.expected)}")


if __name__ == "__main__":
    main()
