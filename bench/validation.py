"""Validation throughput: the full application rule set on the reference record, and the
envelope schema alone under jsonschema, fastjsonschema and jsonschema-rs.

    python -m bench.validation [--records N] [--profile FILE]

One core, one process; each figure is the best of three timed runs of N records, in
CPU time of this process (so other load on the machine does not count against it).
The target applies to the first figure: the same reference record object validated N
times. The line under it validates a freshly decoded copy each time (decoding not
timed), which is what the load path does: it costs more, because nothing of the record
is cached yet (string hashes, the UTF-8 form of non-ASCII strings for jsonschema-rs).
With ``--profile``, one more (untimed) run of the full rule set under cProfile is written
to FILE and its top entries are printed after the figures.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema_rs
import orjson

import schemas
from rules.applications import validate_application
from rules.catalogue import Catalogue, build_catalogue
from rules.identifiers import resident_id_check_char

CATALOGUE_FILE = Path(__file__).parents[1] / "hub" / "defaults" / "catalogue.json"
TARGET = 200_000
RECEIVED_AT = datetime.fromisoformat("2026-11-23T12:00:00+08:00")


def reference_record(catalogue: Catalogue) -> tuple[dict[str, Any], frozenset[str]]:
    """An accepted licence application (公路超限运输许可): a person with a resident ID
    and a contact, a filled form checked against the item's form schema, and the item's
    two required materials, whose files have arrived."""
    item = next(i for i in catalogue.items.values() if i.form_check is not None and i.state == "A")
    body, contact_body = "32010219900307123", "32010519850412004"
    materials = [
        {"material_code": rule.material_code, "name": rule.name, "file": f"{n}.pdf",
         "sha256": f"{n:x}" * 64, "media_type": "application/pdf", "size": 5120}
        for n, rule in enumerate((r for r in item.materials if r.required), start=1)
    ]
    record = {
        "net_id": "NET20261123000001",
        "submitted_at": "2026-11-23T09:30:00+08:00",
        "channel": 1,
        "power_code": item.code,
        "agency_code": item.agency_code,
        "case_name": f"南京恒通物流有限公司{item.name}申请",
        "summary": "因大件设备运输需要，申请公路超限运输许可，材料已按要求上传。",
        "applicant": {"type": "person", "name": "张伟", "id_type": "resident_id",
                      "id_number": body + resident_id_check_char(body), "mobile": "13812345678",
                      "address": "南京市玄武区中山路100号", "postcode": "210018"},
        "contact": {"type": "person", "name": "李娜", "id_type": "resident_id",
                    "id_number": contact_body + resident_id_check_char(contact_body), "mobile": "13912345678"},
        "form": {"plate_number": "苏A12345", "axles": 6, "gross_weight_t": 55.5, "travel_date": "2026-11-30"},
        "materials": materials,
    }
    return record, frozenset(str(m["sha256"]) for m in materials)


def rate(function: Callable[[], object], records: int) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(records):
            function()
        best = min(best, time.process_time() - started)
    return records / best


def rate_fresh(function: Callable[[Any], object], raw: bytes, records: int, chunk: int = 100) -> float:
    """Like ``rate``, but each record is a new object decoded from ``raw``, as on the load
    path: no string of it has been hashed or UTF-8 encoded yet. Records are decoded
    (untimed) a hundred at a time just before they are validated, so they are still in
    the CPU caches, as on the load path, which validates each record right after decoding it."""
    best = float("inf")
    for _ in range(3):
        spent = 0.0
        for start in range(0, records, chunk):
            batch = [orjson.loads(raw) for _ in range(min(chunk, records - start))]
            started = time.process_time()
            for instance in batch:
                function(instance)
            spent += time.process_time() - started
        best = min(best, spent)
    return records / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the full rule set here")
    args = parser.parse_args(argv)
    catalogue = build_catalogue(json.loads(CATALOGUE_FILE.read_text("utf-8")))
    record, attachments = reference_record(catalogue)
    assert validate_application(record, catalogue, received_at=RECEIVED_AT, attachments=attachments) == []
    envelope_schema = schemas.load_schema("application")
    full = schemas.validator("application")
    fast = fastjsonschema.compile(envelope_schema)
    rust = jsonschema_rs.validator_for(envelope_schema, validate_formats=True)
    assert full.is_valid(record) and fast(record) == record and rust.is_valid(record)

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
          f"one core, {args.records} records, best of 3 (process CPU time)")
    rule_set = rate(
        lambda: validate_application(record, catalogue, received_at=RECEIVED_AT, attachments=attachments),
        args.records,
    )
    fresh = rate_fresh(
        lambda instance: validate_application(instance, catalogue, received_at=RECEIVED_AT, attachments=attachments),
        orjson.dumps(record),
        args.records,
    )
    rows = [
        ("full rule set (validate_application)", rule_set),
        ("  the same, each record decoded afresh", fresh),
        ("envelope only: jsonschema-rs", rate(lambda: rust.is_valid(record), args.records)),
        ("envelope only: fastjsonschema", rate(lambda: fast(record), max(args.records // 4, 1))),
        ("envelope only: jsonschema", rate(lambda: full.is_valid(record), max(args.records // 100, 1))),
    ]
    for label, per_second in rows:
        print(f"  {label:<40} {per_second:>12,.0f} records/s  {1e6 / per_second:8.2f} µs/record")
    verdict = "meets" if rule_set >= TARGET else "MISSES"
    print(f"target {TARGET:,} records/s for the full rule set: {verdict}")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.records):
            validate_application(record, catalogue, received_at=RECEIVED_AT, attachments=attachments)
        profiler.disable()
        profiler.dump_stats(args.profile)
        print(f"\ntop of the profile ({args.profile}), by own time:")
        pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(12)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
