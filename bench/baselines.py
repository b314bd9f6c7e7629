"""Baselines for the data path, on the same workload (bench.workload):

- ``sha256+fsync copy``: read every byte of the portal drop, SHA-256 it and write it to one
  fsync'd file: the practical limit of any path that must hash and persist the bytes once.
- ``naive pipeline``: what an information centre would script: a ``jsonschema`` loop over
  the submissions, then ``tar | zstd | openssl enc`` to pack and encrypt, and
  ``openssl dec | zstd -d | tar -x`` on the other side. A tool that is not installed is
  skipped with a note (``zstd`` falls back to no compression step).
- ``jsonschema-rs envelope``: the compiled envelope schema alone on the parsed envelopes:
  the ceiling of any validating path in Python.
- ``contract floor``: only the storage work the hub's contracts require now, with nothing
  computed: the portal's front database (前置库) read by keyset in intake's batches of 20,000
  and each batch marked carried in one transaction, every attachment of its content-addressed
  store read once, and one record per application (the size of a sealed status record) put
  into a public status store of the hub's layout, keyed by a 32-byte name, one durable
  transaction per batch (``connectors.status_store``). The hub does at least that.
- ``file floor`` (the earlier contracts): only the file work they required, with nothing computed:
  every file of each drop folder read and the folder moved out of the drop (the portal's
  contract: a folder per submission), and one public status document per application
  written durably the way the hub writes them (``connectors.files.write_batch``, 5,000 per
  sync, 256 folders; the public feed's contract: a document per application, named by its
  lookup). The hub writes at least that (most applications' documents twice, see
  docs/benchmarks.md), so no implementation of these contracts on this disk goes faster.
  It runs last: it empties the drop.

    python -m bench.baselines [--records N] [--hub-rate R]

With ``--hub-rate`` (records per second of the hub's data path), each line also prints the
hub's rate as a share of the baseline's.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from bench.measure import children_peak_rss_mb, peak_rss_mb

Row = tuple[str, float, int, str]  # name, seconds, bytes, note


def _files(drop: Path) -> list[Path]:
    return sorted(p for p in drop.rglob("*") if p.is_file())


def sha256_fsync_copy(drop: Path, scratch: Path) -> Row:
    files = _files(drop)
    started = time.perf_counter()
    digest = hashlib.sha256()
    total = 0
    with open(scratch / "copy.bin", "wb") as out:
        for path in files:
            data = path.read_bytes()
            digest.update(data)
            out.write(data)
            total += len(data)
        out.flush()
        os.fsync(out.fileno())
    return "sha256 + fsync'd copy", time.perf_counter() - started, total, ""


def naive_pipeline(drop: Path, scratch: Path) -> Row:
    import jsonschema

    import schemas

    schema = schemas.load_schema("application")
    validator = jsonschema.Draft202012Validator(schema)
    tools = {tool: shutil.which(tool) for tool in ("tar", "zstd", "openssl", "gpg")}
    notes = []
    started = time.perf_counter()
    invalid = 0
    for folder in sorted(drop.iterdir()):
        envelope = orjson.loads((folder / "submission.json").read_bytes())
        invalid += bool(next(iter(validator.iter_errors(envelope)), None))
    total = sum(p.stat().st_size for p in _files(drop))
    if not tools["tar"]:
        return "naive pipeline (jsonschema loop only)", time.perf_counter() - started, total, "tar absent"
    compress = f"| {tools['zstd']} -q -1 -T1 " if tools["zstd"] else ""
    decompress = f"| {tools['zstd']} -q -d " if tools["zstd"] else ""
    if not tools["zstd"]:
        notes.append("zstd absent: no compression step")
    packed = scratch / "drop.tar.zst.enc"
    if tools["openssl"]:
        encrypt = "| openssl enc -aes-256-cbc -pbkdf2 -pass pass:bench "
        decrypt = "openssl enc -d -aes-256-cbc -pbkdf2 -pass pass:bench "
    elif tools["gpg"]:
        encrypt = "| gpg --batch -c --passphrase bench -o - "
        decrypt = "gpg --batch -d --passphrase bench "
    else:
        encrypt = decrypt = ""
        notes.append("openssl and gpg absent: no encryption step")
    out = scratch / "unpacked"
    out.mkdir()
    subprocess.run(
        f"tar -C {drop} -cf - . {compress}{encrypt}> {packed} && sync -f {packed} && "
        f"{decrypt or 'cat '}< {packed} {decompress}| tar -C {out} -xf -",
        shell=True, check=True,
    )
    return "naive pipeline (jsonschema + tar|zstd|openssl)", time.perf_counter() - started, total, "; ".join(notes)


def jsonschema_rs_envelope(drop: Path, _scratch: Path) -> Row:
    import jsonschema_rs

    import schemas

    envelopes = [orjson.loads((f / "submission.json").read_bytes()) for f in sorted(drop.iterdir())]
    check = jsonschema_rs.validator_for(schemas.load_schema("application"), validate_formats=True).is_valid
    started = time.perf_counter()
    valid = sum(1 for envelope in envelopes if check(envelope))
    seconds = time.perf_counter() - started
    return "jsonschema-rs, envelope alone", seconds, 0, f"{len(envelopes) - valid} invalid"


def file_floor(drop: Path, scratch: Path) -> Row:
    from connectors.files import write_batch

    collected, public = scratch / "collected", scratch / "public"
    for shard in range(256):
        (public / f"{shard:02x}").mkdir(parents=True)
    names = sorted(entry.name for entry in os.scandir(drop))
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    total = 0
    documents: list[tuple[str, bytes]] = []
    for start in range(0, len(names), 20_000):  # intake's bundle size
        folder = collected / f"{start:08d}"
        folder.mkdir(parents=True)
        for name in names[start : start + 20_000]:
            source = os.path.join(drop, name)
            envelope = b""
            for entry in os.scandir(source):
                with open(entry.path, "rb") as stream:
                    data = stream.read()
                total += len(data)
                if entry.name == "submission.json":
                    envelope = data
            os.rename(source, os.path.join(folder, name))
            lookup = hashlib.sha256(name.encode()).hexdigest()
            documents.append((os.path.join(public, lookup[:2], lookup + ".json"), envelope))
            if len(documents) == 5_000:
                write_batch(public, documents)
                documents.clear()
    write_batch(public, documents)
    return ("file floor (drop read + moved, 1 document each)", time.perf_counter() - started, total,
            _cpu_note(before, len(names)))


def contract_floor(drop: Path, scratch: Path) -> Row:
    import sqlite3

    from connectors.status_store import StatusStore
    from hub.settings import load_settings
    from rules.query_password import lookup_from_bytes

    settings = load_settings()  # bench.intake.prepare wrote the front database there
    front = Path(settings.internet_db_url.removeprefix("sqlite:///"))
    attachments = settings.portal_store
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    database = sqlite3.connect(front, isolation_level=None)
    store = StatusStore(scratch / "status.sqlite")
    total = records = 0
    last = 0
    sequence = 0
    while True:
        database.execute("BEGIN IMMEDIATE")
        rows = database.execute(
            "SELECT id, net_id, envelope FROM portal_submissions WHERE state = 'new' AND id > ? "
            "ORDER BY id LIMIT 20000", (last,)).fetchall()
        if not rows:
            database.execute("COMMIT")
            break
        sequence += 1
        database.executemany("UPDATE portal_submissions SET state = 'carried', sequence = ? WHERE id = ?",
                             [(sequence, row[0]) for row in rows])
        database.execute("COMMIT")
        last = rows[-1][0]
        records += len(rows)
        total += sum(len(row[2].encode("utf-8")) for row in rows)
        sealed = bytes(300)  # a sealed status record is about 300 bytes
        store.put(sequence, [(lookup_from_bytes(hashlib.sha256(row[1].encode()).digest()), 1, sealed) for row in rows])
    for dirpath, _dirs, names in os.walk(attachments):
        for name in names:
            with open(os.path.join(dirpath, name), "rb") as stream:
                total += len(stream.read())
    store.close()
    return ("contract floor (front DB + sealed store)", time.perf_counter() - started, total,
            _cpu_note(before, records))


def _cpu_note(before: resource.struct_rusage, records: int) -> str:
    """This process's CPU since ``before``: in all, in the kernel, and per application."""
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    kernel = after.ru_stime - before.ru_stime
    return f"{cpu:.2f} CPU s ({kernel:.2f} in the kernel), {cpu / max(records, 1) * 1e6:.0f} µs per application"


BASELINES: tuple[Callable[[Path, Path], Row], ...] = (
    sha256_fsync_copy, naive_pipeline, jsonschema_rs_envelope, contract_floor, file_floor,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--hub-rate", type=float, help="records/s of the hub's data path, for ratios")
    parser.add_argument("--only", nargs="*", choices=[b.__name__ for b in BASELINES],
                        help="run only these baselines")
    parser.add_argument("--json", type=Path, help="also write the rows here (python -m bench reads them)")
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    from bench.workload import catalogue_documents, write_drop

    with tempfile.TemporaryDirectory(prefix="hub-baselines-") as folder:
        root = Path(folder)
        write_drop(root / "drop", args.records, args.seed, catalogue_documents(args.seed))
        if not args.only or "contract_floor" in args.only:
            from bench.intake import prepare

            prepare(root, args.records, args.seed, "front_db")  # the same workload, as front-database rows
        print(f"baselines, {args.records:,} applications of the same workload")
        print(f"{'baseline':<48} {'seconds':>8} {'records/s':>11} {'MB/s':>8} {'hub/baseline':>13}  note")
        for baseline in BASELINES:
            if args.only and baseline.__name__ not in args.only:
                continue
            scratch = root / baseline.__name__
            scratch.mkdir()
            name, seconds, size, note = baseline(root / "drop", scratch)
            rate = args.records / seconds
            ratio = f"{args.hub_rate / rate:>12.1%}" if args.hub_rate else f"{'':>12}"
            mbs = f"{size / seconds / 1e6:>8.0f}" if size else f"{'':>8}"
            print(f"{name:<48} {seconds:>8.2f} {rate:>11,.0f} {mbs} {ratio}   {note}")
            rows.append({"name": name, "seconds": seconds, "bytes": size, "note": note})
            shutil.rmtree(scratch)
        print(f"peak RSS: this process {peak_rss_mb():.0f} MB, largest tool {children_peak_rss_mb():.0f} MB")
    if args.json:
        args.json.write_bytes(orjson.dumps({"records": args.records, "rows": rows, "peak_rss_mb": peak_rss_mb(),
                                            "tools_peak_rss_mb": children_peak_rss_mb()}))


if __name__ == "__main__":
    main()
