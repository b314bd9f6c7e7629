"""The seeded portal simulator: drops online applications (网上申请) into the portal folder
the way the public portal does, with a known set of deliberate defects and the outcome
intake must reach for each."""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct
import zlib
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine

from hub.progress import Progress
from hub.settings import Settings, SettingsError
from rules.catalogue import MaterialRule, PowerItem, build_catalogue
from rules.identifiers import (
    RESIDENT_ID_CHECK,
    USCC_ALPHABET,
    org_code_check_char,
    resident_id_check_char,
    uscc_check_char,
)

# Deliberate defects: each tuple is the reason codes one rejected application must get.
REJECTED_KINDS: tuple[tuple[str, ...], ...] = (
    ("ID_CHECK_DIGIT",),
    ("USCC_CHECK_DIGIT",),
    ("ITEM_SUSPENDED",),
    ("MATERIAL_MISSING",),
    ("SCHEMA_MINLENGTH",),
    ("ID_CHECK_DIGIT", "MATERIAL_MISSING"),
)
# Submissions the internet zone must refuse to carry across the gap at all.
QUARANTINED_KINDS: tuple[str, ...] = ("SUBMISSION_UNREADABLE", "ATTACHMENT_TYPE")
DEFECT_KINDS: tuple[tuple[str, ...], ...] = REJECTED_KINDS + tuple(
    (code,) for code in QUARANTINED_KINDS
)
APPLICATIONS_PER_DEFECT = 50  # one of each defect kind per this many applications

SUBMISSION_FILE = "submission.json"
ORGANISATION_SHARE = 0.2

# 县级行政区划代码 of Nanjing: district name, postcode, a few real roads.
NANJING_DISTRICTS: Mapping[str, tuple[str, str, tuple[str, ...]]] = {
    "320102": ("玄武区", "210018", ("中山路", "北京东路", "龙蟠路", "珠江路")),
    "320104": ("秦淮区", "210001", ("中华路", "白下路", "长白街", "龙蟠中路")),
    "320105": ("建邺区", "210019", ("江东中路", "庐山路", "嘉陵江东街", "黄山路")),
    "320106": ("鼓楼区", "210009", ("中山北路", "湖南路", "汉中路", "广州路")),
    "320111": ("浦口区", "211800", ("浦珠中路", "江浦街道文德路", "浦口大道")),
    "320113": ("栖霞区", "210046", ("仙林大道", "和燕路", "尧化街道金尧路")),
    "320114": ("雨花台区", "210012", ("雨花东路", "软件大道", "宁南大道")),
    "320115": ("江宁区", "211100", ("双龙大道", "天元中路", "竹山路", "胜太路")),
    "320116": ("六合区", "211500", ("雄州南路", "龙池街道龙津路", "延安路")),
    "320117": ("溧水区", "211200", ("珍珠南路", "通济街", "永阳街道天生桥大道")),
    "320118": ("高淳区", "211300", ("淳溪街道宝塔路", "石臼湖南路", "镇兴路")),
}
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙"
    "史陶黎贺顾毛郝龚邵万钱严武戴莫孔向汤"
)
COMPOUND_SURNAMES = ("欧阳", "司马", "诸葛", "上官", "东方")
GIVEN_NAME_CHARACTERS = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚英华玉萍红建文辉力宁鹏飞斌宇浩凯健俊帆"
    "旭晨欣悦婷雪琳晶颖佳子梓涵轩睿博思一诗雨泽嘉志国海春晓"
)
TRADE_NAMES = (
    "恒通", "宏达", "顺达", "金陵", "华远", "安捷", "通达", "鑫源", "远航", "畅行",
    "众诚", "博远", "天润", "万通", "迅驰", "长江", "钟山", "秦淮", "宁运", "苏宁",
)
LINES_OF_BUSINESS = ("运输", "物流", "货运", "汽车运输", "客运", "交通工程", "汽车租赁")
MOBILE_PREFIXES = tuple(f"13{d}" for d in "0123456789") + tuple(
    f"15{d}" for d in "012356789"
) + tuple(f"18{d}" for d in "0123456789")
SUMMARY_TEMPLATES = (
    "{applicant}申请办理{item}，材料已按要求上传，请予审查。",
    "因经营需要，{applicant}申请{item}，请予办理。",
    "申请人{applicant}依法申请{item}，承诺所提交材料真实有效。",
)
# Office hours (办公时间) of the submission day, in seconds after midnight.
OFFICE_HOURS = ((8 * 3600 + 1800, 12 * 3600), (13 * 3600 + 1800, 17 * 3600 + 1800))
ATTACHMENT_SIZES = (1024, 8192)
_PADDING_SLACK = 128  # a PDF ends up to one text line longer than asked
FILE_EXTENSIONS: Mapping[str, str] = {
    "application/pdf": ".pdf",
    "image/jpeg": ".jpg",
    "image/png": ".png",
}


class Portal(Protocol):
    """Where the simulated public portal puts a complete submission: the drop folder or the
    front database (前置库)."""

    def write(self, net_id: str, submitted_at: str, document: bytes, attachments: Mapping[str, bytes]) -> None: ...

    def close(self) -> None: ...


class DropPortal:
    """The portal's drop folder: a folder per submission, ``submission.json`` last."""

    def __init__(self, drop_dir: Path) -> None:
        self.drop_dir = drop_dir

    def write(self, net_id: str, submitted_at: str, document: bytes, attachments: Mapping[str, bytes]) -> None:
        _drop_submission(self.drop_dir / net_id, attachments, document)

    def close(self) -> None:
        pass


class FrontDbPortal:
    """The portal's front database: each attachment into the content-addressed store first
    (fsync'd, renamed), then the rows, ``batch`` per transaction (docs/front-database.md).
    Rows after the first ``hold_back_after`` are kept back until :meth:`release_held`."""

    def __init__(self, engine: Engine, store: Path, *, batch: int = 1000, hold_back_after: int | None = None) -> None:
        self.engine, self.store, self.batch = engine, store, batch
        self.hold_back_after = hold_back_after
        self.rows: list[dict[str, Any]] = []
        self.held: list[dict[str, Any]] = []
        self.written = 0

    def write(self, net_id: str, submitted_at: str, document: bytes, attachments: Mapping[str, bytes]) -> None:
        from connectors.front_db import store_attachment

        for content in attachments.values():
            store_attachment(self.store, content)
        row = {"net_id": net_id, "submitted_at": submitted_at, "envelope": document.decode("utf-8", "replace")}
        if self.hold_back_after is not None and self.written >= self.hold_back_after:
            self.held.append(row)
            return
        self.written += 1
        self.rows.append(row)
        if len(self.rows) >= self.batch:
            self._flush()

    def _flush(self) -> None:
        from connectors.db import transaction
        from connectors.front_db import insert_submissions

        if self.rows:
            with transaction(self.engine) as connection:
                insert_submissions(connection, self.rows)
            self.rows = []

    def close(self) -> None:
        self._flush()

    def release_held(self) -> int:
        """Insert the rows held back; returns how many."""
        held, self.held = self.held, []
        self.rows += held
        self._flush()
        return len(held)


def portal_for(settings: Settings, to: str | None = None) -> tuple[Path | Portal, str]:
    """Where the simulated portal writes, and how to say so: ``to`` (``front_db`` or
    ``drop``), by default the front database unless intake reads only the drop folder
    (``HUB_INGRESS=drop``)."""
    from hub.zones import zone_engine

    to = to or ("drop" if settings.ingress == "drop" else "front_db")
    if to == "drop":
        if not settings.reads_drop():
            raise SettingsError(f"HUB_INGRESS={settings.ingress}: intake would never read the drop folder")
        return settings.portal_drop, str(settings.portal_drop)
    if not settings.reads_front_db():
        raise SettingsError(f"HUB_INGRESS={settings.ingress}: intake would never read the front database")
    portal = FrontDbPortal(zone_engine(settings, "internet"), settings.portal_store)
    return portal, f"the front database (portal_submissions; attachments in {settings.portal_store})"


def generate_batch(
    drop_dir: Path | Portal,
    count: int,
    seed: int,
    catalogue_documents: list[dict[str, Any]],
    agency_code: str,
    submitted_on: date,
    *,
    first_serial: int = 1,
    progress: Progress | None = None,
) -> dict[str, dict[str, Any]]:
    """Write ``count`` applications into the portal drop folder (a path) or through a
    ``Portal`` (the front database), and return the ground truth: NET_ID → the outcome
    intake must reach.

    For ``count`` ≥ 8, ``max(1, count // 50)`` applications of each kind in
    ``DEFECT_KINDS`` are among them; the rest are valid. The same arguments always give
    the same bytes on disk.
    """
    rng = random.Random(seed)
    items = _usable_items(catalogue_documents)
    plan = _defect_plan(count, rng)
    minors = _minor_plan(plan, seed)
    times = sorted(_office_time(rng) for _ in range(count))
    portal = DropPortal(drop_dir) if isinstance(drop_dir, Path) else drop_dir
    truth: dict[str, dict[str, Any]] = {}
    for position, (serial, defects, seconds) in enumerate(
        zip(range(first_serial, first_serial + count), plan, times)
    ):
        net_id = f"NET{submitted_on:%Y%m%d}{serial:06d}"
        submitted_at = f"{submitted_on.isoformat()}T{_clock(seconds)}+08:00"
        item = _choose_item(rng, items, defects)
        envelope, attachments = _application(
            rng, net_id, submitted_at, item, agency_code, submitted_on, defects,
            minor=position in minors,
        )
        document = json.dumps(envelope, ensure_ascii=False, indent=1).encode("utf-8")
        if "SUBMISSION_UNREADABLE" in defects:
            document = document[: len(document) // 2]
        portal.write(net_id, submitted_at, document, attachments)
        truth[net_id] = expected_outcome(defects)
        if progress is not None:
            progress.advance()
    portal.close()
    if progress is not None:
        progress.finish()
    return truth


def expected_outcome(defects: tuple[str, ...]) -> dict[str, Any]:
    """What intake must decide for an application with these deliberate defects."""
    quarantined = [code for code in defects if code in QUARANTINED_KINDS]
    if quarantined:
        return {"outcome": "quarantined", "code": quarantined[0]}
    if defects:
        return {"outcome": "rejected", "codes": sorted(defects)}
    return {"outcome": "accepted"}


def write_expected(path: Path, truth: Mapping[str, Mapping[str, Any]]) -> None:
    """Write the ground truth of a batch as JSON (UTF-8, keys sorted)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(truth, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    path.write_text(text, encoding="utf-8")


# The plan of a batch


def _minor_plan(plan: list[tuple[str, ...]], seed: int) -> set[int]:
    """Positions of valid applications whose applicant is a minor (16 or 17 years old):
    accepted like any other, but never published (DOMAIN "Publication"). As many as there
    are applications of each defect kind, so only batches of 8 or more have any."""
    if len(plan) < len(DEFECT_KINDS):
        return set()
    valid = [position for position, defects in enumerate(plan) if not defects]
    wanted = min(len(valid), max(1, len(plan) // APPLICATIONS_PER_DEFECT))
    return set(random.Random(f"{seed}:minors").sample(valid, wanted))


def _defect_plan(count: int, rng: random.Random) -> list[tuple[str, ...]]:
    if count < len(DEFECT_KINDS):
        return [()] * count
    per_kind = max(1, count // APPLICATIONS_PER_DEFECT)
    plan = [kind for kind in DEFECT_KINDS for _ in range(per_kind)]
    plan += [()] * (count - len(plan))
    rng.shuffle(plan)
    return plan


def _usable_items(documents: list[dict[str, Any]]) -> list[PowerItem]:
    """Catalogue items (in use or suspended) whose required materials this simulator can
    produce, in catalogue order."""
    catalogue = build_catalogue(documents)
    return [
        item for item in catalogue.items.values()
        if item.state in ("A", "T")
        and all(_producible(rule) for rule in item.materials if rule.required)
    ]


def _producible(rule: MaterialRule) -> bool:
    return any(media_type in FILE_EXTENSIONS for media_type in rule.media_types)


def _choose_item(
    rng: random.Random, items: list[PowerItem], defects: tuple[str, ...]
) -> PowerItem:
    wanted_state = "T" if "ITEM_SUSPENDED" in defects else "A"
    pool = [item for item in items if item.state == wanted_state]
    if "MATERIAL_MISSING" in defects:
        pool = [item for item in pool if any(rule.required for rule in item.materials)]
    if "ATTACHMENT_TYPE" in defects:
        pool = [item for item in pool if any(_pdf_required(rule) for rule in item.materials)]
    if not pool:
        raise ValueError(
            f"the catalogue has no item in state {wanted_state} fit for defect {defects}"
        )
    return rng.choice(pool)


def _pdf_required(rule: MaterialRule) -> bool:
    return rule.required and "application/pdf" in rule.media_types


def _office_time(rng: random.Random) -> int:
    start, end = rng.choice(OFFICE_HOURS)
    return rng.randrange(start, end)


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


# One application


def _application(
    rng: random.Random,
    net_id: str,
    submitted_at: str,
    item: PowerItem,
    agency_code: str,
    submitted_on: date,
    defects: tuple[str, ...],
    *,
    minor: bool = False,
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The envelope of one application and its attachment files by name."""
    if minor:
        applicant = _person(rng, submitted_on, minor=True)
    elif "USCC_CHECK_DIGIT" in defects:
        applicant = _organisation(rng, broken_credit_code=True)
    elif "ID_CHECK_DIGIT" in defects:
        applicant = _person(rng, submitted_on, broken_id=True)
    elif rng.random() < ORGANISATION_SHARE:
        applicant = _organisation(rng)
    else:
        applicant = _person(rng, submitted_on)
    contact = None
    if applicant["type"] == "organisation" or rng.random() < 0.25:
        contact = _person(rng, submitted_on)  # 经办人 or 代理人

    summary = rng.choice(SUMMARY_TEMPLATES).format(applicant=applicant["name"], item=item.name)
    if "SCHEMA_MINLENGTH" in defects:
        summary = "申请"

    chosen = [rule for rule in item.materials if rule.required or rng.random() < 0.5]
    chosen = [rule for rule in chosen if _producible(rule)]
    if "MATERIAL_MISSING" in defects:
        chosen.remove(rng.choice([rule for rule in chosen if rule.required]))
    executable_at = None
    if "ATTACHMENT_TYPE" in defects:
        executable_at = rng.choice([i for i, rule in enumerate(chosen) if _pdf_required(rule)])

    materials: list[dict[str, Any]] = []
    attachments: dict[str, bytes] = {}
    for index, rule in enumerate(chosen):
        if index == executable_at:
            media_type, content = "application/pdf", _windows_executable(rng)
        else:
            media_type = rng.choice([t for t in rule.media_types if t in FILE_EXTENSIONS])
            content = _attachment(rng, media_type, f"{net_id} {rule.material_code}")
        file_name = f"{index + 1}{FILE_EXTENSIONS[media_type]}"
        attachments[file_name] = content
        materials.append({
            "material_code": rule.material_code,
            "name": rule.name,
            "file": file_name,
            "sha256": hashlib.sha256(content).hexdigest(),
            "media_type": media_type,
            "size": len(content),
        })

    envelope: dict[str, Any] = {
        "net_id": net_id,
        "submitted_at": submitted_at,
        "channel": 1,
        "power_code": item.code,
        "agency_code": agency_code,
        "case_name": f"{applicant['name']}{item.name}申请",
        "summary": summary,
        "applicant": applicant,
    }
    if contact is not None:
        envelope["contact"] = contact
    envelope["form"] = {}
    envelope["materials"] = materials
    return envelope, attachments


def _drop_submission(folder: Path, attachments: Mapping[str, bytes], document: bytes) -> None:
    """Attachments first, ``submission.json`` last and atomically: the portal's signal
    that the folder is complete."""
    folder.mkdir(parents=True)
    for name, content in attachments.items():
        _write_durably(folder / name, content)
    part = folder / (SUBMISSION_FILE + ".part")
    _write_durably(part, document)
    part.rename(folder / SUBMISSION_FILE)
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _write_durably(path: Path, content: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


# Applicants (申请人)


def _person(
    rng: random.Random, submitted_on: date, *, broken_id: bool = False, minor: bool = False
) -> dict[str, Any]:
    area = rng.choice(list(NANJING_DISTRICTS))
    id_number = _resident_id(rng, area, submitted_on, ages=(16, 17) if minor else (18, 75))
    if broken_id:
        id_number = id_number[:17] + rng.choice(RESIDENT_ID_CHECK.replace(id_number[17], ""))
    return {
        "type": "person",
        "name": _person_name(rng),
        "id_type": "resident_id",
        "id_number": id_number,
        "mobile": _mobile(rng),
        "address": _address(rng, area, home=True),
        "postcode": NANJING_DISTRICTS[area][1],
    }


def _organisation(rng: random.Random, *, broken_credit_code: bool = False) -> dict[str, Any]:
    area = rng.choice(list(NANJING_DISTRICTS))
    credit_code = _credit_code(rng, area)
    if broken_credit_code:
        credit_code = credit_code[:17] + rng.choice(USCC_ALPHABET.replace(credit_code[17], ""))
    suffix = rng.choice(("有限公司", "有限责任公司"))
    name = f"南京{rng.choice(TRADE_NAMES)}{rng.choice(LINES_OF_BUSINESS)}{suffix}"
    return {
        "type": "organisation",
        "name": name,
        "id_type": "uscc",
        "id_number": credit_code,
        "phone": f"025-{rng.choice('568')}{rng.randrange(10**7):07d}",
        "address": _address(rng, area, home=False),
        "postcode": NANJING_DISTRICTS[area][1],
    }


def _person_name(rng: random.Random) -> str:
    surname = rng.choice(COMPOUND_SURNAMES) if rng.random() < 0.03 else rng.choice(SURNAMES)
    given_length = 1 if rng.random() < 0.3 else 2
    return surname + "".join(rng.choice(GIVEN_NAME_CHARACTERS) for _ in range(given_length))


def _resident_id(
    rng: random.Random, area: str, submitted_on: date, ages: tuple[int, int] = (18, 75)
) -> str:
    """A resident ID of someone ``ages[0]`` to ``ages[1]`` years old on ``submitted_on``."""
    latest = _years_before(submitted_on, ages[0])
    earliest = _years_before(submitted_on, ages[1] + 1) + timedelta(days=1)
    born = date.fromordinal(rng.randint(earliest.toordinal(), latest.toordinal()))
    body = f"{area}{born:%Y%m%d}{rng.randint(1, 999):03d}"
    return body + resident_id_check_char(body)


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _credit_code(rng: random.Random, area: str) -> str:
    """A unified social credit code of an enterprise (登记管理部门 9, 类别 1)."""
    org_body = f"{rng.randrange(10**8):08d}"
    body = f"91{area}{org_body}{org_code_check_char(org_body)}"
    return body + uscc_check_char(body)


def _mobile(rng: random.Random) -> str:
    return f"{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"


def _address(rng: random.Random, area: str, *, home: bool) -> str:
    district, _, roads = NANJING_DISTRICTS[area]
    address = f"南京市{district}{rng.choice(roads)}{rng.randint(1, 399)}号"
    if home:
        building, entrance = rng.randint(1, 30), rng.randint(1, 4)
        flat = f"{rng.randint(1, 28)}0{rng.randint(1, 4)}"
        address += f"{building}幢{entrance}单元{flat}室"
    return address


# Attachments (申请材料): small files whose content matches their declared type.


def _attachment(rng: random.Random, media_type: str, label: str) -> bytes:
    size = rng.randint(ATTACHMENT_SIZES[0], ATTACHMENT_SIZES[1] - _PADDING_SLACK)
    if media_type == "application/pdf":
        return _pdf(rng, size, label)
    if media_type == "image/jpeg":
        return _jpeg(rng, size)
    if media_type == "image/png":
        return _png(rng, size)
    raise ValueError(f"cannot produce an attachment of type {media_type}")


def _pdf(rng: random.Random, size: int, label: str) -> bytes:
    """A one-page PDF 1.7 with a correct cross-reference table, padded with text lines to
    at least ``size`` bytes."""
    lines = [f"BT /F1 12 Tf 50 800 Td ({label}) Tj ET"]
    overhead = len(_pdf_file(b"")) + len(str(size))  # the /Length value grows with the stream
    while sum(len(line) + 1 for line in lines) + overhead < size:
        text = rng.randbytes(24).hex()
        lines.append(f"BT /F1 8 Tf 50 {rng.randint(40, 780)} Td ({text}) Tj ET")
    return _pdf_file("\n".join(lines).encode("ascii"))


def _pdf_file(content: bytes) -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>"
        ),
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def _jpeg(rng: random.Random, size: int) -> bytes:
    """SOI, a JFIF APP0 segment, a comment segment of filler and EOI."""
    app0 = b"\xff\xe0" + struct.pack(">H5sBBBHHBB", 16, b"JFIF\x00", 1, 1, 0, 72, 72, 0, 0)
    filler = rng.randbytes(size - 2 - len(app0) - 4 - 2)
    comment = b"\xff\xfe" + struct.pack(">H", len(filler) + 2) + filler
    return b"\xff\xd8" + app0 + comment + b"\xff\xd9"


def _png(rng: random.Random, size: int) -> bytes:
    """A real RGB image of noise, sized so the file is about ``size`` bytes."""
    side = max(20, int(((size - 100) / 3) ** 0.5))
    rows = b"".join(b"\x00" + rng.randbytes(side * 3) for _ in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data)
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def _windows_executable(rng: random.Random) -> bytes:
    """An MZ/PE header (a Windows program), for an attachment that claims to be a PDF."""
    dos_header = bytearray(64)
    dos_header[:2] = b"MZ"
    dos_header[0x3C:0x40] = struct.pack("<I", 0x80)
    stub = b"This program cannot be run in DOS mode.\r\r\n$"
    image = bytes(dos_header) + stub.ljust(0x80 - 64, b"\x00") + b"PE\x00\x00"
    return image + rng.randbytes(rng.randint(*ATTACHMENT_SIZES) - len(image))
