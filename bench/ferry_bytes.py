"""Ferry bytes: pack → transfer → verify → unpack, beside SHA-256 + fsync'd copy and tar|zstd|openssl.

    python -m bench.ferry_bytes [--records N] [--attachment-mb M] [--suite intl|gm] [--dir DIR]

(a) N application records of about 1.5 KB in one bundle; (b) M MiB of attachments (PDF,
20 MiB files) in one bundle. Each prints MB/s per stage and end to end, the SHA-256 plus
fsync'd copy rate of the same bytes, the shell baseline when the tools exist, and the peak
RSS of this process (which must not grow with N or M).
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
from typing import BinaryIO

import orjson

from ferry.bundle import BundleHeader, ItemSource, Limits, open_bundle, write_bundle
from ferry.keys import (
    export_public_key,
    generate_zone_key,
    load_decryption_keys,
    load_keyring,
    load_recipient_key,
    load_signing_key,
)
from ferry.transport import LocalFolderTransport

MiB = 1024 * 1024
ATTACHMENT_FILE_BYTES = 20 * MiB
LIMITS = Limits(max_bundle_bytes=64 * 1024 * MiB, max_record_item_bytes=32 * 1024 * MiB)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fsync_file(stream: BinaryIO) -> None:
    stream.flush()
    os.fsync(stream.fileno())


def timed(label: str, nbytes: int, fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"  {label:<28} {seconds:8.2f} s  {nbytes / MiB / seconds:8.1f} MiB/s")
    return seconds


def record(i: int) -> dict[str, object]:
    """An application record of about 1.5 KB."""
    return {
        "net_id": f"NET2026112{i:08d}",
        "item_code": f"{i % 997:06d}",
        "submitted_at": "2026-11-22T10:00:00+08:00",
        "applicant": {"name": "张三", "id_type": "resident", "id_number": f"11010519491231{i % 10000:04d}",
                      "phone": f"138{i % 100000000:08d}", "address": "江苏省南京市玄武区中山路" + "甲" * 40},
        "form": {f"field_{k}": f"value {i} {k} " + "x" * 40 for k in range(12)},
        "materials": [{"name": f"材料{k}", "sha256": hashlib.sha256(f"{i}-{k}".encode()).hexdigest()} for k in range(3)],
    }


def spool_records(path: Path, count: int) -> str:
    """Write ``count`` records as sorted-key JSON Lines, hashing as it goes; return the SHA-256."""
    sha = hashlib.sha256()
    with path.open("wb") as out:
        batch: list[bytes] = []
        for i in range(count):
            batch.append(orjson.dumps(record(i), option=orjson.OPT_SORT_KEYS) + b"\n")
            if len(batch) == 4096:
                chunk = b"".join(batch)
                sha.update(chunk)
                out.write(chunk)
                batch.clear()
        chunk = b"".join(batch)
        sha.update(chunk)
        out.write(chunk)
    return sha.hexdigest()


def make_attachments(folder: Path, total_mb: int) -> list[tuple[Path, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    block = os.urandom(MiB)
    files = []
    remaining = total_mb * MiB
    index = 0
    while remaining > 0:
        size = min(ATTACHMENT_FILE_BYTES, remaining)
        path = folder / f"a{index:05d}.pdf"
        sha = hashlib.sha256()
        with path.open("wb") as out:
            written = 0
            while written < size:
                piece = (b"%PDF-1.7\n" + index.to_bytes(8, "big") if written == 0 else b"") + block
                piece = piece[: size - written]
                out.write(piece)
                sha.update(piece)
                written += len(piece)
        files.append((path, sha.hexdigest()))
        remaining -= size
        index += 1
    return files


def baseline_sha_copy(sources: list[Path], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for source in sources:
        sha = hashlib.sha256()
        with source.open("rb") as src, (dest / source.name).open("wb") as out:
            while chunk := src.read(MiB):
                sha.update(chunk)
                out.write(chunk)
            fsync_file(out)


def shell_baseline(src_dir: Path, out: Path) -> str | None:
    tools = [t for t in ("tar", "zstd", "openssl") if shutil.which(t)]
    if len(tools) < 3:
        return None
    command = (
        f"tar -cf - -C {src_dir} . | zstd -1 -q -T1 | "
        f"openssl enc -aes-256-ctr -pbkdf2 -pass pass:bench -out {out} && sync {out}"
    )
    subprocess.run(command, shell=True, check=True)
    return "tar | zstd -1 | openssl aes-256-ctr, sync"


def gpg_baseline(src_dir: Path, out: Path) -> str | None:
    if not shutil.which("gpg") or not shutil.which("tar"):
        return None
    command = (
        f"tar -cf - -C {src_dir} . | gpg --batch --yes --quiet --pinentry-mode loopback "
        f"--passphrase bench --compress-algo none --cipher-algo AES256 --symmetric -o {out} "
        f"&& sync {out}"
    )
    subprocess.run(command, shell=True, check=True, env={**os.environ, "GNUPGHOME": str(out.parent / "gnupg")})
    return "tar | gpg --symmetric AES256, sync"


class Zones:
    def __init__(self, root: Path, suite: str) -> None:
        sender_dir, receiver_dir = root / "internet-keys", root / "admin-keys"
        generate_zone_key(sender_dir, "internet", suite)
        generate_zone_key(receiver_dir, "admin", suite)
        export_public_key(sender_dir, "internet", receiver_dir)
        export_public_key(receiver_dir, "admin", sender_dir)
        self.key = load_signing_key(sender_dir, "internet")
        self.recipient = load_recipient_key(sender_dir, "admin")
        self.keyring = load_keyring(receiver_dir)
        self.decryption = load_decryption_keys(receiver_dir, "admin")


def pipeline(
    work: Path, zones: Zones, items: list[ItemSource], counts: dict[str, int], payload: int,
    unpack: Callable[[object], None],
) -> float:
    outbox, ferry = work / "outbox", work / "ferry"
    outbox.mkdir()
    ferry.mkdir()
    header = BundleHeader("inbound", 1, None, "2026-11-22T10:00:00+08:00", "bench", counts)
    bundle = outbox / "inbound-000000000001.peb"

    def pack() -> None:
        partial = bundle.with_name(bundle.name + ".part")
        with partial.open("wb") as out:
            write_bundle(out, header, items, zones.key, recipient=zones.recipient, limits=LIMITS)
            fsync_file(out)
        os.replace(partial, bundle)

    transport = LocalFolderTransport(ferry)
    verified: list[object] = []

    def verify() -> None:
        path = transport.path_of(bundle.name)
        assert path is not None
        verified.append(
            open_bundle(path, zones.keyring, LIMITS, "inbound", decryption_keys=zones.decryption)
        )

    total = timed("pack (seal, sign, fsync)", payload, pack)
    total += timed("transfer (local folder)", payload, lambda: transport.put(bundle.name, bundle))
    total += timed("verify (hash, decrypt)", payload, verify)
    total += timed("unpack", payload, lambda: unpack(verified[0]))
    print(f"  {'end to end':<28} {total:8.2f} s  {payload / MiB / total:8.1f} MiB/s"
          f"  (bundle {bundle.stat().st_size / MiB:.0f} MiB)")
    return total


def run_records(root: Path, zones: Zones, count: int) -> None:
    print(f"(a) {count:,} application records")
    source = root / "records.jsonl"
    sha = spool_records(source, count)
    payload = source.stat().st_size
    print(f"  payload {payload / MiB:.0f} MiB, {payload / count:.0f} bytes per record")
    items = [ItemSource.from_path("records/applications.jsonl", "records", "application/x-ndjson", source)]
    items = [ItemSource(items[0].name, items[0].kind, items[0].media_type, items[0].open, sha)]

    def unpack(bundle: object) -> None:
        n = 0
        for line in bundle.iter_records("applications"):  # type: ignore[attr-defined]
            orjson.loads(line)
            n += 1
        assert n == count

    work = root / "a"
    work.mkdir()
    ours = pipeline(work, zones, items, {"applications": count}, payload, unpack)
    base = timed("baseline SHA-256 + fsync copy", payload, lambda: baseline_sha_copy([source], work / "copy"))
    print(f"  ferry end to end = {100 * base / ours:.0f}% of the SHA-256 + copy rate")


def run_attachments(root: Path, zones: Zones, megabytes: int) -> None:
    print(f"(b) {megabytes:,} MiB of attachments")
    files = make_attachments(root / "attachments", megabytes)
    payload = sum(path.stat().st_size for path, _ in files)
    items = [ItemSource.from_path(f"att/{digest}", "attachment", "application/pdf", path) for path, digest in files]

    def unpack(bundle: object) -> None:
        store = root / "b" / "store"
        store.mkdir(parents=True, exist_ok=True)
        for _, digest in files:
            with (store / digest).open("wb") as out:
                bundle.copy_item(f"att/{digest}", out)  # type: ignore[attr-defined]
                fsync_file(out)

    work = root / "b"
    work.mkdir()
    ours = pipeline(work, zones, items, {}, payload, unpack)
    base = timed("baseline SHA-256 + fsync copy", payload, lambda: baseline_sha_copy([p for p, _ in files], work / "copy"))
    print(f"  ferry end to end = {100 * base / ours:.0f}% of the SHA-256 + copy rate (target >= 50%)")
    for make in (shell_baseline, gpg_baseline):
        out = work / f"baseline-{make.__name__}.out"
        (work / "gnupg").mkdir(mode=0o700, exist_ok=True)
        start = time.perf_counter()
        label = make(root / "attachments", out)
        if label is not None:
            seconds = time.perf_counter() - start
            print(f"  {label:<28} {seconds:8.2f} s  {payload / MiB / seconds:8.1f} MiB/s (pack side only)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--attachment-mb", type=int, default=1024)
    parser.add_argument("--suite", choices=["intl", "gm"], default="intl")
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: a temp dir)")
    args = parser.parse_args(argv)
    print(f"ferry bytes, suite {args.suite}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        root = Path(scratch)
        zones = Zones(root / "keys", args.suite)
        if args.records:
            run_records(root, zones, args.records)
            print(f"  peak RSS so far {peak_rss_mb():.0f} MiB")
        if args.attachment_mb:
            run_attachments(root, zones, args.attachment_mb)
            print(f"  peak RSS so far {peak_rss_mb():.0f} MiB")




if __name__ == "__main__":
    main()
