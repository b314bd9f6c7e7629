"""The legal documents the hub renders (受理通知书, 不予受理决定书, 补正告知书): PDF with
WeasyPrint in the CJK font the project's set-up installs, stored under the administration
zone's document store, one ``case_documents`` row each.

Incremental and exactly once: the status changes that call for a document are read in
event order after the position ``legal_documents`` (``supervision_positions``); each
document is rendered (deterministically: the same facts give the same bytes), written
(``.part``, fsync, rename) and then recorded together with the new position in one
transaction. A crash between the file and the commit leaves a file the next run writes
again with the same bytes; a change whose (event id, kind) already has a row is skipped,
and the unique constraint refuses a second row. A document the rules refuse
(``rules.legal_documents.DocumentRefused``) becomes an open ``LEGAL_DOCUMENT_REFUSED``
alarm, a finding on the data stewards' summary, resolved once the document is rendered.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import IntegrityError

from connectors.alarms import open_alarm_rows, raise_alarm, resolve_open
from connectors.clock import CST, iso, now
from connectors.db import (
    applications,
    case_documents,
    status_outbox,
    supervision_positions,
    transaction,
)
from connectors.files import write_atomic
from rules.catalogue import Catalogue
from rules.legal_documents import (
    DOCUMENT_STATUSES,
    TEMPLATE_VERSION,
    CaseFacts,
    DocumentRefused,
    LegalDocument,
    build_document,
    chinese_date,
    document_kind,
)
from schemas.exceptions import TerminalError, TransientError

POSITION: Final = "legal_documents"
STORE_FOLDER: Final = "documents"
REFUSED_ALARM: Final = "LEGAL_DOCUMENT_REFUSED"
# The CJK font scripts/apt-packages.txt installs (fonts-wqy-zenhei); the PDF must embed it.
CJK_FONT_FAMILY: Final = "WenQuanYi Zen Hei"
CJK_FONT_NAME: Final = "WenQuanYi"
# Case numbers are the hub's own (agency code + sequence); anything else never names a file.
_CASE_NUMBER: Final = re.compile(r"^[0-9A-Za-z]{11,20}$")


class FontNotEmbedded(TerminalError):
    """The rendered PDF does not embed the CJK font: the set-up is incomplete (terminal:
    install fonts-wqy-zenhei)."""


def document_store(admin_root: Path) -> Path:
    """Where the administration zone keeps its rendered documents."""
    return admin_root / STORE_FOLDER


def document_file_name(case_number: str, kind: str, event_id: int) -> str:
    """The file of a document, relative to the store: named from the case number, the kind
    and the status change only (never from free text), under a folder of the case number's
    first 12 characters (agency code and the top of its sequence). ``DocumentRefused``
    (``BAD_CASE_NUMBER``) for anything that is not a case number."""
    if not _CASE_NUMBER.match(case_number or ""):
        raise DocumentRefused("BAD_CASE_NUMBER", f"{case_number!r} is not a case number; it cannot name a file")
    return f"{case_number[:12]}/{case_number}-{kind}-{event_id}.pdf"


# --- rendering ------------------------------------------------------------------------

_STYLE: Final = f"""
@page {{ size: A4; margin: 30mm 26mm 28mm 26mm;
         @bottom-center {{ content: counter(page) " / " counter(pages); font-size: 9pt; }} }}
html {{ font-family: "{CJK_FONT_FAMILY}"; font-size: 14pt; line-height: 1.8; color: #000; }}
h1 {{ font-size: 22pt; font-weight: normal; text-align: center; letter-spacing: 0.2em;
      margin: 0 0 4mm 0; }}
.agency {{ text-align: center; font-size: 16pt; margin: 0 0 2mm 0; }}
.number {{ text-align: center; margin: 0 0 8mm 0; }}
p {{ margin: 0; text-indent: 2em; text-align: justify; }}
p.addressee {{ text-indent: 0; }}
ol {{ margin: 1mm 0 1mm 2em; padding-left: 1.5em; }}
.basis, .contact {{ font-size: 11pt; line-height: 1.6; margin-top: 6mm; }}
.basis p, .contact p {{ text-indent: 0; }}
.signature {{ margin-top: 14mm; text-align: right; }}
.signature p {{ text-indent: 0; text-align: right; }}
.seal {{ color: #888; font-size: 11pt; }}
"""


def document_html(document: LegalDocument) -> str:
    """The document as an HTML page (every text escaped). The PDF's creation and
    modification dates are the day of issue, so a re-render gives the same bytes."""
    e = html.escape
    issued = f"{document.issued_on.isoformat()}T00:00:00+08:00"
    parts = [
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">",
        f"<title>{e(document.title)} {e(document.number)}</title>",
        f"<meta name=\"author\" content=\"{e(document.agency_name)}\">",
        f"<meta name=\"dcterms.created\" content=\"{issued}\">",
        f"<meta name=\"dcterms.modified\" content=\"{issued}\">",
        f"<meta name=\"generator\" content=\"Power Exchange Hub legal documents {e(document.template_version)}\">",
        f"<style>{_STYLE}</style></head><body>",
        f"<div class=\"agency\">{e(document.agency_name)}</div>",
        f"<h1>{e(document.title)}</h1>",
        f"<div class=\"number\">{e(document.number)}</div>",
        f"<p class=\"addressee\">{e(document.addressee)}</p>",
        *(f"<p>{e(text)}</p>" for text in document.paragraphs),
    ]
    if document.items:
        parts.append("<ol>" + "".join(f"<li>{e(item)}</li>" for item in document.items) + "</ol>")
    parts += [f"<p>{e(text)}</p>" for text in document.closing]
    parts.append(f"<div class=\"signature\"><p>{e(document.agency_name)}</p>"
                 f"<p class=\"seal\">（本机关专用印章）</p><p>{chinese_date(document.issued_on)}</p></div>")
    parts.append(f"<div class=\"basis\"><p>事项设定依据：{e(document.legal_basis)}</p></div>")
    if document.contact:
        parts.append("<div class=\"contact\">" + "".join(f"<p>{e(line)}</p>" for line in document.contact) + "</div>")
    parts.append("</body></html>")
    return "".join(parts)


@dataclass(frozen=True)
class RenderedPdf:
    data: bytes
    pages: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def render_pdf(document: LegalDocument) -> RenderedPdf:
    """The document as PDF bytes, with the CJK font embedded (``FontNotEmbedded`` if not)."""
    from weasyprint import HTML

    rendered = HTML(string=document_html(document)).render()
    data = rendered.write_pdf()
    assert data is not None
    if not any(CJK_FONT_NAME in name for name in embedded_fonts(data)):
        raise FontNotEmbedded(
            f"the {document.title} of {document.case_number} does not embed the {CJK_FONT_FAMILY} font; "
            "install fonts-wqy-zenhei (make setup does)")
    return RenderedPdf(data, len(rendered.pages))


def embedded_fonts(data: bytes) -> set[str]:
    """The base names of the fonts whose program the PDF embeds (FontFile, 2 or 3)."""
    from pypdf import PdfReader

    names: set[str] = set()
    for page in PdfReader(io.BytesIO(data)).pages:
        resources = page.get("/Resources")
        fonts = resources.get_object().get("/Font") if resources is not None else None
        if fonts is None:
            continue
        for reference in fonts.get_object().values():
            font = reference.get_object()
            described = [font, *(d.get_object() for d in font.get("/DescendantFonts", ()))]
            for part in described:
                descriptor = part.get("/FontDescriptor")
                if descriptor is None:
                    continue
                descriptor = descriptor.get_object()
                if any(key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3")):
                    names.add(str(font.get("/BaseFont", "")))
    return names


# --- the facts of a case --------------------------------------------------------------


def _facts_query() -> Any:
    return (
        select(
            status_outbox.c.event_id, status_outbox.c.case_number, status_outbox.c.status,
            status_outbox.c.at, status_outbox.c.opinion, status_outbox.c.reasons,
            applications.c.applicant_name, applications.c.submitted_at, applications.c.power_code,
        )
        .select_from(status_outbox.join(applications, applications.c.net_id == status_outbox.c.net_id))
        .where(status_outbox.c.status.in_(DOCUMENT_STATUSES))
        .order_by(status_outbox.c.event_id)
    )


def _occurrences(connection: Connection, case_numbers: Iterable[str]) -> dict[int, int]:
    """For each document-calling change of these cases: the how-many-th of its status in
    its case it is (the ordinal of a second correction notice's number)."""
    rows = connection.execute(
        select(status_outbox.c.event_id, status_outbox.c.case_number, status_outbox.c.status)
        .where(status_outbox.c.case_number.in_(sorted(set(case_numbers))))
        .where(status_outbox.c.status.in_(DOCUMENT_STATUSES))
        .order_by(status_outbox.c.event_id)
    ).all()
    seen: dict[tuple[str, str], int] = {}
    found: dict[int, int] = {}
    for event_id, case_number, status in rows:
        seen[(case_number, status)] = seen.get((case_number, status), 0) + 1
        found[event_id] = seen[(case_number, status)]
    return found


def _reason_texts(reasons: Any) -> tuple[str, ...]:
    texts = []
    for reason in reasons or ():
        if isinstance(reason, Mapping) and isinstance(reason.get("message"), str):
            texts.append(reason["message"])
        elif isinstance(reason, str):
            texts.append(reason)
    return tuple(texts)


def case_facts(row: Mapping[str, Any], catalogue: Catalogue, occurrence: int = 1) -> CaseFacts:
    """The facts of one status change joined with its application, and the catalogue item
    in force when the application was made (``DocumentRefused`` if the item is unknown)."""
    # Dates on the documents are the agency's (China Standard Time), whatever the offset given.
    applied_at = datetime.fromisoformat(row["submitted_at"]).astimezone(CST)
    item = catalogue.item_at(row["power_code"], applied_at) or catalogue.get(row["power_code"])
    if item is None:
        raise DocumentRefused("MISSING_FACTS", f"the item {row['power_code']} is not in the catalogue")
    doc = item.document
    return CaseFacts(
        event_id=row["event_id"], case_number=row["case_number"], status=row["status"],
        event_at=datetime.fromisoformat(row["at"]).astimezone(CST), applied_at=applied_at,
        applicant_name=row["applicant_name"] or "", item_name=item.name, category=item.category,
        legal_basis=str(doc.get("legal_basis") or ""), agency_name=str(doc.get("agency_name") or ""),
        opinion=row["opinion"], reasons=_reason_texts(row["reasons"]),
        office=doc.get("office"), place=doc.get("place"), phone=doc.get("phone"),
        promised_limit=item.promised_limit_days, statutory_limit=item.statutory_limit_days,
        limit_unit=doc.get("limit_unit"), occurrence=occurrence,
    )


# --- the pass -------------------------------------------------------------------------


@dataclass
class DocumentsReport:
    """What one run did: documents rendered (by kind), changes already documented, changes
    that call for no document (ex officio items), and refusals (steward findings)."""

    rendered: dict[str, int] = field(default_factory=dict)
    already: int = 0
    not_applicable: int = 0
    refused: list[dict[str, Any]] = field(default_factory=list)
    position: int = 0
    files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Done:
    row: dict[str, Any]
    pdf: RenderedPdf


def _position(connection: Connection) -> int:
    value = connection.execute(
        select(supervision_positions.c.value).where(supervision_positions.c.name == POSITION)
    ).scalar()
    return int(value or 0)


def _set_position(connection: Connection, value: int) -> None:
    done = connection.execute(
        update(supervision_positions).where(supervision_positions.c.name == POSITION).values(value=value))
    if not done.rowcount:
        connection.execute(supervision_positions.insert().values(name=POSITION, value=value))


def _documented(connection: Connection, event_ids: Sequence[int]) -> dict[tuple[int, str], dict[str, Any]]:
    rows = connection.execute(select(case_documents).where(case_documents.c.event_id.in_(event_ids))).mappings()
    return {(row["event_id"], row["kind"]): dict(row) for row in rows}


def _render_rows(
    rows: Sequence[Mapping[str, Any]], catalogue: Catalogue, occurrences: Mapping[int, int],
    documented: Mapping[tuple[int, str], Mapping[str, Any]], report: DocumentsReport, *, again: bool = False,
) -> tuple[list[_Done], list[dict[str, Any]]]:
    """Render the documents the rows call for that are not documented yet (all of them when
    ``again``); returns them and the refusals."""
    done: list[_Done] = []
    refused: list[dict[str, Any]] = []
    for row in rows:
        try:
            facts = case_facts(row, catalogue, occurrences.get(row["event_id"], 1))
            kind = document_kind(facts.status, facts.category)
            if kind is None:
                report.not_applicable += 1
                continue
            if (facts.event_id, kind) in documented and not again:
                report.already += 1
                continue
            document = build_document(facts)
            file_name = document_file_name(document.case_number, document.kind, document.event_id)
        except DocumentRefused as refusal:
            refused.append({
                "event_id": row["event_id"], "case_number": row["case_number"], "status": row["status"],
                "code": refusal.code, "message": refusal.message,
            })
            continue
        pdf = render_pdf(document)
        done.append(_Done({
            "case_number": document.case_number, "kind": document.kind, "event_id": document.event_id,
            "sha256": pdf.sha256, "file_name": file_name,
            "pages": pdf.pages, "template_version": TEMPLATE_VERSION,
        }, pdf))
    return done, refused


def _write_files(store: Path, done: Sequence[_Done]) -> None:
    for item in done:
        path = store / item.row["file_name"]
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, item.pdf.data)


def _record(
    connection: Connection, done: Sequence[_Done], refused: Sequence[dict[str, Any]],
    documented: Mapping[tuple[int, str], Mapping[str, Any]], at: str,
) -> None:
    """Record the rendered documents (new rows, or the changed ones of a re-render), raise a
    finding for each refusal not open yet, and resolve the findings of what is now rendered."""
    new = [{**d.row, "rendered_at": at} for d in done if (d.row["event_id"], d.row["kind"]) not in documented]
    if new:
        connection.execute(case_documents.insert(), new)
    for d in done:
        before = documented.get((d.row["event_id"], d.row["kind"]))
        if before is not None and (before["sha256"], before["pages"], before["template_version"]) != (
                d.row["sha256"], d.row["pages"], d.row["template_version"]):
            connection.execute(update(case_documents).where(case_documents.c.id == before["id"]).values(
                sha256=d.row["sha256"], pages=d.row["pages"], template_version=d.row["template_version"],
                rendered_at=at))
    open_events = {row.detail.get("event_id") for row in open_alarm_rows(connection, REFUSED_ALARM)}
    for refusal in refused:
        if refusal["event_id"] not in open_events:
            raise_alarm(connection, REFUSED_ALARM, {
                **refusal,
                "message": f"{refusal['case_number']} ({refusal['status']}, event {refusal['event_id']}): "
                           f"{refusal['message']}",
            }, at)
    rendered_events = {d.row["event_id"] for d in done}
    if rendered_events & open_events:
        resolve_open(connection, REFUSED_ALARM, "文书已生成 · document rendered", now(),
                     matching=lambda detail: detail.get("event_id") in rendered_events)


def _count(report: DocumentsReport, done: Sequence[_Done], refused: Sequence[dict[str, Any]]) -> None:
    for d in done:
        report.rendered[d.row["kind"]] = report.rendered.get(d.row["kind"], 0) + 1
        report.files.append(d.row["file_name"])
    report.refused += refused


def render_documents(
    engine: Engine, *, store: Path, catalogue: Catalogue, batch_size: int = 50,
) -> DocumentsReport:
    """Render the documents of every status change after the position, batch by batch:
    files first, then the rows, the findings and the new position in one transaction."""
    report = DocumentsReport()
    while True:
        with engine.connect() as connection:
            after = _position(connection)
            rows = [dict(r) for r in connection.execute(
                _facts_query().where(status_outbox.c.event_id > after).limit(batch_size)).mappings()]
            if not rows:
                report.position = after
                return report
            occurrences = _occurrences(connection, (r["case_number"] for r in rows))
            documented = _documented(connection, [r["event_id"] for r in rows])
        done, refused = _render_rows(rows, catalogue, occurrences, documented, report)
        _write_files(store, done)
        last = rows[-1]["event_id"]
        try:
            with transaction(engine) as connection:
                if _position(connection) != after:
                    raise TransientError("another run moved the legal_documents position; try again")
                _record(connection, done, refused, documented, iso(now()))
                _set_position(connection, last)
        except IntegrityError as error:
            raise TransientError(f"another run recorded a document of events {after + 1}..{last}: {error.orig}") from None
        _count(report, done, refused)
        report.position = last


def rerender_case(engine: Engine, case_number: str, *, store: Path, catalogue: Catalogue) -> DocumentsReport:
    """Render again every document a case's status changes call for (an operator's repair:
    a lost file, a template change, a refusal whose data has been completed). Changes after
    the position are left to the pass, so the two never record the same document."""
    report = DocumentsReport()
    with engine.connect() as connection:
        report.position = _position(connection)
        rows = [dict(r) for r in connection.execute(
            _facts_query().where(status_outbox.c.case_number == case_number)
            .where(status_outbox.c.event_id <= report.position)).mappings()]
        occurrences = _occurrences(connection, [case_number])
        documented = _documented(connection, [r["event_id"] for r in rows])
    done, refused = _render_rows(rows, catalogue, occurrences, documented, report, again=True)
    _write_files(store, done)
    with transaction(engine) as connection:
        _record(connection, done, refused, documented, iso(now()))
    _count(report, done, refused)
    return report


def case_documents_of(engine: Engine, case_number: str, *, store: Path) -> list[dict[str, Any]]:
    """The recorded documents of a case, each with its path and whether the file is there
    with the recorded content (``ok``, ``missing``, ``changed``)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(case_documents).where(case_documents.c.case_number == case_number)
            .order_by(case_documents.c.event_id, case_documents.c.kind)).mappings().all()
    found = []
    for row in rows:
        path = store / row["file_name"]
        if not path.is_file():
            state = "missing"
        else:
            state = "ok" if hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"] else "changed"
        found.append({**dict(row), "path": str(path), "file": state})
    return found


def open_refusals(engine: Engine, case_number: str | None = None) -> list[dict[str, Any]]:
    """The open refusal findings (of one case, or all)."""
    with engine.connect() as connection:
        rows = open_alarm_rows(connection, REFUSED_ALARM)
    return [{"id": r.id, "at": r.at, **r.detail} for r in rows
            if case_number is None or r.detail.get("case_number") == case_number]
