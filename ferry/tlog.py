"""The audit trail's tamper-evident log (痕迹管理): an append-only Merkle tree per zone in the
style of Certificate Transparency, and the signed checkpoints a receiving zone checks.

Hashing is RFC 6962 / RFC 9162 §2.1 with the crypto suite's hash (SHA-256 for ``intl``, SM3
for ``gm``). The tree is kept as the "stored hashes" of golang.org/x/mod/sumdb/tlog: the hash
of every complete subtree, in one dense order, so appending a leaf writes 1 + (trailing one
bits of its index) hashes and a proof reads O(log n) of them. Tiles follow C2SP tlog-tiles,
checkpoints C2SP tlog-checkpoint on C2SP signed-note. Nothing here touches storage: the
caller reads hashes through a :class:`HashReader` (a table, tile files) and persists what an
append returns. docs/audit.md specifies the format.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ferry.keys import SigningKey
from ferry.suites import CryptoSuite, get_suite
from schemas.exceptions import TerminalError

HASH_SIZE = 32  # SHA-256 and SM3 digests alike

LEAF_PREFIX = b"\x00"  # RFC 6962 §2.1 domain separation
NODE_PREFIX = b"\x01"

TILE_HEIGHT = 8  # C2SP tlog-tiles: a tile is a subtree of height 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_TILE_LEVEL = 63

# Refusal codes (open_checkpoint raises CheckpointRefused; verify_extension returns them).
BAD_FORMAT = "BAD_FORMAT"  # not a signed note, or not a checkpoint
UNKNOWN_KEY = "UNKNOWN_KEY"  # no signature line from a known key
BAD_SIGNATURE = "BAD_SIGNATURE"  # a known key's signature does not verify
MISSING_SIGNATURE = "MISSING_SIGNATURE"  # a required key did not sign
ORIGIN_MISMATCH = "ORIGIN_MISMATCH"  # the checkpoints are of different logs
ROLLBACK = "ROLLBACK"  # the new tree is smaller than the old one
FORK = "FORK"  # the new tree does not extend the old one
BAD_PROOF = "BAD_PROOF"  # the consistency proof is malformed (wrong count or hash size)
SECURITY_CODES = frozenset({ROLLBACK, FORK})  # these raise a security alarm

# Errors of storage behind a HashReader or of tiles read from elsewhere.
STORAGE_MISMATCH = "STORAGE_MISMATCH"  # a reader gave the wrong number or size of hashes
TILE_MISMATCH = "TILE_MISMATCH"  # tiles do not authenticate against the trusted tree

# C2SP signed-note signature types. Ed25519 is 0x01 (signed-note §Ed25519 signatures). SM2 has
# no assigned byte: 0xff is reserved for such types, followed by a longer identifier.
SIGNATURE_TYPES = {"intl": b"\x01", "gm": b"\xff" + b"power-exchange-hub/sm2-sm3"}
PUBLIC_KEY_BYTES = {"intl": 32, "gm": 64}  # Ed25519 (RFC 8032); SM2 x || y
MAX_NOTE_BYTES = 64 * 1024
MAX_SIGNATURES = 100  # C2SP signed-note: verifiers must accept at least 16

_EM_DASH = "\u2014"
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")
_MAX_SIZE = (1 << 63) - 1


class TlogError(TerminalError):
    """Bad log input: tiles or stored hashes that do not add up, a refused checkpoint."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail

    def __reduce__(self) -> tuple[type[TlogError], tuple[str, str]]:
        return (type(self), (self.code, self.detail))


class CheckpointRefused(TlogError):
    """A checkpoint that is malformed or not signed by a known key (``code`` says which)."""


# --------------------------------------------------------------------------------------
# RFC 6962 hashing
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeHasher:
    """RFC 6962 §2.1 hashing with one digest: leaf H(0x00 || d), node H(0x01 || l || r)."""

    name: str
    digest: Callable[[bytes], bytes] = field(repr=False, compare=False)

    def leaf_hash(self, data: bytes) -> bytes:
        return self.digest(LEAF_PREFIX + data)

    def node_hash(self, left: bytes, right: bytes) -> bytes:
        return self.digest(NODE_PREFIX + left + right)

    def leaf_hashes(self, entries: Iterable[bytes]) -> list[bytes]:
        """:meth:`leaf_hash` of each of ``entries``: a batch without a Python call per leaf
        where the hash is SHA-256 (the audit log hashes every event of every stage)."""
        if self.name == "SHA-256":
            sha256 = hashlib.sha256
            return [sha256(LEAF_PREFIX + data).digest() for data in entries]
        digest = self.digest
        return [digest(LEAF_PREFIX + data) for data in entries]

    def node_hasher(self) -> Callable[[bytes, bytes], bytes]:
        """:meth:`node_hash` as a plain function (one call less per node in a batch)."""
        if self.name == "SHA-256":
            sha256 = hashlib.sha256
            return lambda left, right: sha256(NODE_PREFIX + left + right).digest()
        return self.node_hash

    def empty_root(self) -> bytes:
        """MTH({}) = HASH() (RFC 9162 §2.1.1); golang's sumdb uses 32 zero bytes instead."""
        return self.digest(b"")


def tree_hasher(suite: str | CryptoSuite) -> TreeHasher:
    """The tree hasher of a crypto suite (by name or object): its own hash."""
    crypto = get_suite(suite) if isinstance(suite, str) else suite
    return TreeHasher(crypto.hash_name, crypto.hash)


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2), where RFC 6962 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


# --------------------------------------------------------------------------------------
# RFC 9162 §2.1: the definitions over all leaves (reference; O(n), for small trees)
# --------------------------------------------------------------------------------------


def merkle_tree_hash(leaf_hashes: Sequence[bytes], hasher: TreeHasher) -> bytes:
    """MTH(D[n]) of RFC 9162 §2.1.1, given the leaf hashes MTH({d(i)}) = H(0x00 || d(i))."""
    if not leaf_hashes:
        return hasher.empty_root()
    return _mth(leaf_hashes, 0, len(leaf_hashes), hasher)


def _mth(leaves: Sequence[bytes], lo: int, hi: int, hasher: TreeHasher) -> bytes:
    if hi - lo == 1:
        return leaves[lo]
    k = _split(hi - lo)
    return hasher.node_hash(_mth(leaves, lo, lo + k, hasher), _mth(leaves, lo + k, hi, hasher))


def inclusion_path(index: int, leaf_hashes: Sequence[bytes], hasher: TreeHasher) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1: the audit path of leaf ``index``, lowest first."""
    if not 0 <= index < len(leaf_hashes):
        raise ValueError(f"leaf {index} is not in a tree of {len(leaf_hashes)} leaves")
    path: list[bytes] = []
    lo, hi = 0, len(leaf_hashes)
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(_mth(leaf_hashes, lo + k, hi, hasher))
            hi = lo + k
        else:
            path.append(_mth(leaf_hashes, lo, lo + k, hasher))
            lo += k
    path.reverse()
    return path


def consistency_path(
    old_size: int, leaf_hashes: Sequence[bytes], hasher: TreeHasher
) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1 for 0 < m < n (empty for m = 0 or m = n)."""
    return [
        _mth(leaf_hashes, lo, hi, hasher)
        for lo, hi in _consistency_ranges(old_size, len(leaf_hashes))
    ]


# --------------------------------------------------------------------------------------
# RFC 9162 §2.1.3.2 and §2.1.4.2: verification
# --------------------------------------------------------------------------------------


def verify_inclusion(
    hasher: TreeHasher, index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """True when ``proof`` shows the leaf with ``leaf_hash`` at ``index`` in the tree ``root`` of
    ``size`` leaves (RFC 9162 §2.1.3.2). Any malformed input gives False."""
    if not 0 <= index < size or not _is_hash(leaf_hash) or not _is_hash(root):
        return False
    if not all(_is_hash(p) for p in proof):
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = hasher.node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hasher.node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    hasher: TreeHasher,
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """True when ``proof`` shows the tree ``new_root`` of ``new_size`` leaves extends the tree
    ``old_root`` of ``old_size`` leaves (RFC 9162 §2.1.4.2). Equal sizes need equal roots and
    an empty proof; the empty tree (root HASH()) is extended by every tree, with an empty proof."""
    if not 0 <= old_size <= new_size or not _is_hash(old_root) or not _is_hash(new_root):
        return False
    if not all(_is_hash(p) for p in proof):
        return False
    if old_size == 0:
        return (
            not proof and old_root == hasher.empty_root() and (new_size > 0 or new_root == old_root)
        )
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = hasher.node_hash(c, fr)
            sr = hasher.node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hasher.node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


def inclusion_proof_size(index: int, size: int) -> int:
    """The number of hashes in the audit path of leaf ``index`` in a tree of ``size`` leaves."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    return len(_inclusion_ranges(index, size))


def consistency_proof_size(old_size: int, new_size: int) -> int:
    """The number of hashes in the consistency proof from ``old_size`` to ``new_size``."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from {old_size} to {new_size} leaves")
    return len(_consistency_ranges(old_size, new_size))


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes make up PATH(index, D[size]), lowest first."""
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes make up PROOF(old_size, D[new_size]), in proof order."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from {old_size} to {new_size} leaves")
    if old_size in (0, new_size):
        return []
    # SUBPROOF(m, D[lo:hi], b) walked down from the root; b turns false once we go right.
    upper: list[tuple[int, int]] = []
    lo, hi = 0, new_size
    while hi != old_size:
        k = _split(hi - lo)
        if old_size <= lo + k:
            upper.append((lo + k, hi))
            hi = lo + k
        else:
            upper.append((lo, lo + k))
            lo += k
    upper.reverse()
    # SUBPROOF(m, D[m], false) = {MTH(D[m])}; with b still true (lo = 0) it is empty.
    return ([(lo, hi)] if lo > 0 else []) + upper


# --------------------------------------------------------------------------------------
# Stored hashes (golang.org/x/mod/sumdb/tlog)
# --------------------------------------------------------------------------------------


class HashReader(Protocol):
    """Reads stored hashes by their stored-hash index (a table, tile files, a list)."""

    def read_hashes(self, indexes: Sequence[int]) -> Sequence[bytes]:
        """The hashes at ``indexes``, in that order (callers ask in increasing order)."""
        ...


def stored_hash_index(level: int, n: int) -> int:
    """Where the hash of the ``n``-th subtree of height ``level`` (covering leaves
    [n·2^level, (n+1)·2^level)) sits in the dense order: after the hashes completed by
    every earlier leaf, level-0 hash first, then each subtree the leaf completes."""
    if level < 0 or n < 0:
        raise ValueError(f"no stored hash at level {level}, index {n}")
    # Leaf j stores 1 + (trailing one bits of j) hashes, so leaf m starts at 2m - popcount(m);
    # the subtree is completed by its last leaf m, as that leaf's (level)-th hash.
    m = ((n + 1) << level) - 1
    return 2 * m - m.bit_count() + level


def split_stored_hash_index(index: int) -> tuple[int, int]:
    """The (level, n) of a stored-hash index; inverse of :func:`stored_hash_index`."""
    if index < 0:
        raise ValueError(f"no stored hash at index {index}")
    # The leaf m whose hashes hold ``index`` satisfies 2m - popcount(m) <= index.
    m = index // 2
    start = 2 * m - m.bit_count()
    while True:
        following = m + 1
        next_start = 2 * following - following.bit_count()
        if next_start > index:
            break
        m, start = following, next_start
    level = index - start
    return level, m >> level


def stored_hash_count(size: int) -> int:
    """The number of stored hashes of a tree of ``size`` leaves (the next append's start)."""
    if size < 0:
        raise ValueError(f"no tree of {size} leaves")
    return 2 * size - size.bit_count()


def _range_nodes(lo: int, hi: int) -> list[tuple[int, int]]:
    """The complete subtrees (level, n) whose hashes make up MTH(D[lo:hi]), left to right."""
    nodes: list[tuple[int, int]] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        if lo & ((1 << level) - 1):
            raise ValueError(f"leaves [{lo}, {hi}) are not an RFC 6962 subtree")
        nodes.append((level, lo >> level))
        lo += 1 << level
    return nodes


def _read(reader: HashReader, indexes: Sequence[int]) -> list[bytes]:
    hashes = list(reader.read_hashes(indexes))
    if len(hashes) != len(indexes) or not all(_is_hash(h) for h in hashes):
        raise TlogError(
            STORAGE_MISMATCH,
            f"asked for {len(indexes)} stored hashes, got {len(hashes)} or a bad one",
        )
    return hashes


def _fold(hashes: Sequence[bytes], hasher: TreeHasher) -> bytes:
    """The hash of adjacent complete subtrees, left to right: the right fringe is hashed first."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = hasher.node_hash(left, result)
    return result


class Frontier:
    """The right edge of a tree: the hashes of the complete subtrees that make up its leaves
    (one per set bit of the size, largest first). Enough to append leaves and to compute the
    root, so an append never needs the rest of the tree."""

    def __init__(self, size: int, hashes: Sequence[bytes], hasher: TreeHasher) -> None:
        if size < 0 or len(hashes) != size.bit_count() or not all(_is_hash(h) for h in hashes):
            raise ValueError(f"a frontier of {size} leaves has {size.bit_count()} hashes")
        self._size = size
        self._hashes = list(hashes)
        self._hasher = hasher

    @classmethod
    def read(cls, size: int, reader: HashReader, hasher: TreeHasher) -> Frontier:
        """The frontier of the stored tree of ``size`` leaves (one read of <= log2(n)+1 hashes)."""
        indexes = [stored_hash_index(level, n) for level, n in _range_nodes(0, size)]
        return cls(size, _read(reader, indexes) if indexes else [], hasher)

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf_hash: bytes) -> list[bytes]:
        """Add one leaf; returns the hashes to store for it, from stored_hash_count(old size) on:
        its leaf hash, then the hash of each subtree it completes."""
        if not _is_hash(leaf_hash):
            raise ValueError("a leaf hash is 32 bytes")
        stored = [leaf_hash]
        node, n = leaf_hash, self._size
        while n & 1:
            node = self._hasher.node_hash(self._hashes.pop(), node)
            stored.append(node)
            n >>= 1
        self._hashes.append(node)
        self._size += 1
        return stored

    def extend(self, leaf_hashes: Iterable[bytes]) -> list[bytes]:
        """:meth:`append` of each leaf in turn; returns all their hashes to store, in order
        (the same list as their ``append`` results joined, built in one loop)."""
        stored: list[bytes] = []
        add = stored.append
        hashes, pop, push = self._hashes, self._hashes.pop, self._hashes.append
        node_hash = self._hasher.node_hasher()
        size = self._size
        for leaf_hash in leaf_hashes:
            if (type(leaf_hash) is not bytes or len(leaf_hash) != HASH_SIZE) and not _is_hash(leaf_hash):
                self._size = size
                raise ValueError("a leaf hash is 32 bytes")
            add(leaf_hash)
            node, n = leaf_hash, size
            while n & 1:
                node = node_hash(pop(), node)
                add(node)
                n >>= 1
            push(node)
            size += 1
        self._size = size
        assert len(hashes) == size.bit_count()
        return stored

    def root(self) -> bytes:
        """The Merkle Tree Hash of the tree so far."""
        if not self._hashes:
            return self._hasher.empty_root()
        return _fold(self._hashes, self._hasher)


@dataclass(frozen=True)
class Appended:
    """What appending a batch gives the caller to persist, atomically with the new size:
    ``hashes`` go to stored-hash indexes ``start``, ``start + 1``, ..."""

    start: int
    hashes: tuple[bytes, ...] = field(repr=False)
    size: int
    root: bytes


def append_leaves(
    size: int, leaf_hashes: Iterable[bytes], reader: HashReader, hasher: TreeHasher
) -> Appended:
    """Append leaves (their RFC 6962 leaf hashes) to the stored tree of ``size`` leaves.

    Reads only the frontier (one call, at most log2(size)+1 hashes); writes 1 + (trailing one
    bits of the leaf's index) hashes per leaf, under two on average."""
    frontier = Frontier.read(size, reader, hasher)
    new = frontier.extend(leaf_hashes)
    return Appended(stored_hash_count(size), tuple(new), frontier.size, frontier.root())


def tree_hash(size: int, reader: HashReader, hasher: TreeHasher) -> bytes:
    """The root hash of the stored tree of ``size`` leaves."""
    return Frontier.read(size, reader, hasher).root()


def _ranges_hashes(
    ranges: Sequence[tuple[int, int]], reader: HashReader, hasher: TreeHasher
) -> list[bytes]:
    """The Merkle Tree Hash of each leaf range, from one read of the stored hashes they need."""
    nodes = [_range_nodes(lo, hi) for lo, hi in ranges]
    wanted = sorted({stored_hash_index(level, n) for group in nodes for level, n in group})
    if not wanted:
        return []
    table = dict(zip(wanted, _read(reader, wanted), strict=True))
    return [
        _fold([table[stored_hash_index(level, n)] for level, n in group], hasher) for group in nodes
    ]


def prove_inclusion(size: int, index: int, reader: HashReader, hasher: TreeHasher) -> list[bytes]:
    """The audit path of leaf ``index`` in the stored tree of ``size`` leaves (as PATH)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    return _ranges_hashes(_inclusion_ranges(index, size), reader, hasher)


def prove_consistency(
    old_size: int, new_size: int, reader: HashReader, hasher: TreeHasher
) -> list[bytes]:
    """The consistency proof from ``old_size`` to ``new_size`` leaves of the stored tree (as
    PROOF)."""
    return _ranges_hashes(_consistency_ranges(old_size, new_size), reader, hasher)


class MemoryHashStore:
    """Stored hashes in a list: the storage of tests and of small tools."""

    def __init__(self) -> None:
        self.hashes: list[bytes] = []

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        return [self.hashes[i] for i in indexes]

    def write(self, appended: Appended) -> None:
        if appended.start != len(self.hashes):
            raise ValueError(f"append starts at {appended.start}, store holds {len(self.hashes)}")
        self.hashes.extend(appended.hashes)


# --------------------------------------------------------------------------------------
# Tiles (C2SP tlog-tiles)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Tile:
    """Tile ``index`` of ``level``: the stored hashes at tree level 8·level of leaves
    [(index·256 + i)·256^level, (index·256 + i + 1)·256^level) for i < width."""

    level: int
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        if not 0 <= self.level <= MAX_TILE_LEVEL or self.index < 0:
            raise ValueError(f"no tile {self.index} at level {self.level}")
        if not 1 <= self.width <= TILE_WIDTH:
            raise ValueError(f"a tile is 1 to {TILE_WIDTH} hashes wide, not {self.width}")

    @property
    def full(self) -> bool:
        return self.width == TILE_WIDTH

    @property
    def path(self) -> str:
        """``tile/<L>/<N>[.p/<W>]``, N in 3-digit elements, all but the last x-prefixed."""
        n, parts = self.index, [f"{self.index % 1000:03d}"]
        n //= 1000
        while n:
            parts.append(f"x{n % 1000:03d}")
            n //= 1000
        path = f"tile/{self.level}/" + "/".join(reversed(parts))
        return path if self.full else f"{path}.p/{self.width}"


_TILE_PATH = re.compile(r"tile/(0|[1-9][0-9]?)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?")


def parse_tile_path(path: str) -> Tile:
    """The tile at ``path``; ValueError for anything but the canonical path of a tile."""
    match = _TILE_PATH.fullmatch(path)
    if match is None:
        raise ValueError(f"not a tile path: {path!r}")
    level = int(match[1])
    index = int(match[2].replace("x", "").replace("/", ""))
    width = int(match[3]) if match[3] else TILE_WIDTH
    if width == TILE_WIDTH and match[3]:
        raise ValueError(f"a full tile has no .p/ suffix: {path!r}")
    tile = Tile(level, index, width)
    if tile.path != path:  # e.g. x000/001: the same tile has one path only
        raise ValueError(f"not the canonical path of {tile.path}: {path!r}")
    return tile


def new_tiles(old_size: int, new_size: int) -> list[Tile]:
    """The tiles a tree needs once it grows from ``old_size`` to ``new_size`` leaves: every tile
    that appears or grows, each partial one at its width for ``new_size``."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"a tree does not shrink from {old_size} to {new_size} leaves")
    tiles: list[Tile] = []
    level = 0
    while new_size >> (TILE_HEIGHT * level):
        old_n = old_size >> (TILE_HEIGHT * level)  # hashes at tree level 8·level
        new_n = new_size >> (TILE_HEIGHT * level)
        if old_n != new_n:
            for index in range(old_n >> TILE_HEIGHT, new_n >> TILE_HEIGHT):
                tiles.append(Tile(level, index))
            last = new_n >> TILE_HEIGHT
            if width := new_n - (last << TILE_HEIGHT):
                tiles.append(Tile(level, last, width))
        level += 1
    return tiles


def tile_for_index(index: int) -> tuple[Tile, int, int]:
    """The smallest tile holding what stored hash ``index`` is computed from, and the byte
    range [start, end) of its data that hashes to it."""
    level, n = split_stored_hash_index(index)
    tile_level = level // TILE_HEIGHT
    within = level - tile_level * TILE_HEIGHT  # height of the hash above the tile's row
    first = n << within  # its first hash in the tile's row, counted across the whole level
    tile_index = first >> TILE_HEIGHT
    offset = first - (tile_index << TILE_HEIGHT)
    width = offset + (1 << within)
    return Tile(tile_level, tile_index, width), offset * HASH_SIZE, width * HASH_SIZE


def _tile_hash(data: bytes, hasher: TreeHasher) -> bytes:
    """MTH of 2^k consecutive hashes of a tile row."""
    if len(data) == HASH_SIZE:
        return data
    half = len(data) // 2
    return hasher.node_hash(_tile_hash(data[:half], hasher), _tile_hash(data[half:], hasher))


def hash_from_tile(tile: Tile, data: bytes, index: int, hasher: TreeHasher) -> bytes:
    """Stored hash ``index`` computed from ``tile``'s data."""
    if len(data) < tile.width * HASH_SIZE:
        raise ValueError(f"{tile.path} needs {tile.width * HASH_SIZE} bytes, has {len(data)}")
    needed, start, end = tile_for_index(index)
    if (needed.level, needed.index) != (tile.level, tile.index) or needed.width > tile.width:
        raise ValueError(f"stored hash {index} is in {needed.path}, not {tile.path}")
    return _tile_hash(data[start:end], hasher)


def read_tile_data(tile: Tile, reader: HashReader) -> bytes:
    """A tile's bytes, from the stored hashes (what a log writes at ``tile.path``)."""
    first = tile.index << TILE_HEIGHT
    indexes = [stored_hash_index(TILE_HEIGHT * tile.level, first + i) for i in range(tile.width)]
    return b"".join(_read(reader, indexes))


def _tile_in_tree(tile: Tile, up: int, size: int) -> Tile | None:
    """The tile ``up`` levels above ``tile`` (its own, for 0) at its width in a tree of
    ``size`` leaves; None when the tree has none of its hashes."""
    level = tile.level + up
    if level > MAX_TILE_LEVEL:
        return None
    index = tile.index >> (TILE_HEIGHT * up)
    available = (size >> (TILE_HEIGHT * level)) - (index << TILE_HEIGHT)
    if available <= 0:
        return None
    return Tile(level, index, min(TILE_WIDTH, available))


class TileHashReader:
    """Stored hashes read from tiles, authenticated against a trusted (size, root) before any
    is returned: the tiles that make up the root hash are checked against it, and every other
    tile against the hash of it in the tile above. ``read_tile`` returns a tile's bytes
    (exactly ``tile.width`` hashes); tiles that authenticated are kept for later reads."""

    def __init__(
        self, size: int, root: bytes, read_tile: Callable[[Tile], bytes], hasher: TreeHasher
    ) -> None:
        if size < 0 or not _is_hash(root):
            raise ValueError("a tile reader needs a tree size and a 32-byte root hash")
        self._size = size
        self._root = root
        self._read_tile = read_tile
        self._hasher = hasher
        self._trusted: dict[Tile, bytes] = {}
        self.tiles_read = 0

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        if not indexes:
            return []
        limit = stored_hash_count(self._size)
        if any(not 0 <= x < limit for x in indexes):
            raise ValueError(f"stored hashes {list(indexes)} are not all in a tree of {self._size}")
        plan, root_parts, tile_of = self._plan(indexes)
        data = dict(self._trusted)
        for tile in plan:
            if tile not in data:
                data[tile] = self._read_tile(tile)
                self.tiles_read += 1
        if any(tile not in self._trusted for tile in plan):
            self._authenticate(plan, root_parts, data)
            for tile in plan:
                self._trusted[tile] = data[tile]
        return [hash_from_tile(tile_of[x], data[tile_of[x]], x, self._hasher) for x in indexes]

    def _plan(
        self, indexes: Sequence[int]
    ) -> tuple[list[Tile], list[tuple[Tile, int]], dict[int, Tile]]:
        """The tiles to read, parents before children: first those the root is made of."""
        plan: dict[Tile, None] = {}
        root_parts: list[tuple[Tile, int]] = []
        for level, n in _range_nodes(0, self._size):
            x = stored_hash_index(level, n)
            tile = self._own_tile(x)
            plan.setdefault(tile)
            root_parts.append((tile, x))
        tile_of: dict[int, Tile] = {}
        for x in indexes:
            tile = self._own_tile(x)
            tile_of[x] = tile
            chain: list[Tile] = []
            up = 0
            current: Tile | None = tile
            while current is not None and current not in plan:
                chain.append(current)
                up += 1
                current = _tile_in_tree(tile, up, self._size)
            if current is None:
                raise TlogError(
                    TILE_MISMATCH, f"no tile above {tile.path} in a tree of {self._size}"
                )
            for below in reversed(chain):
                if not below.full:  # only a full tile is hashed into the tile above it
                    raise TlogError(TILE_MISMATCH, f"{below.path} is partial but has a parent")
                plan.setdefault(below)
        return list(plan), root_parts, tile_of

    def _own_tile(self, index: int) -> Tile:
        tile = _tile_in_tree(tile_for_index(index)[0], 0, self._size)
        if tile is None:
            raise ValueError(f"stored hash {index} is not in a tree of {self._size}")
        return tile

    def _authenticate(
        self, plan: list[Tile], root_parts: list[tuple[Tile, int]], data: dict[Tile, bytes]
    ) -> None:
        for tile in plan:
            if len(data[tile]) != tile.width * HASH_SIZE:
                raise TlogError(
                    TILE_MISMATCH,
                    f"{tile.path} is {len(data[tile])} bytes, not {tile.width * HASH_SIZE}",
                )
        parts = [hash_from_tile(tile, data[tile], x, self._hasher) for tile, x in root_parts]
        if _fold(parts, self._hasher) != self._root:
            raise TlogError(
                TILE_MISMATCH, f"the tiles do not hash to the root of the tree of {self._size}"
            )
        roots = {tile for tile, _ in root_parts}
        for tile in plan:
            if tile in roots:
                continue
            parent = _tile_in_tree(tile, 1, self._size)
            if parent is None or parent not in data:
                raise TlogError(TILE_MISMATCH, f"{tile.path} has no parent tile to check it")
            x = stored_hash_index(TILE_HEIGHT * parent.level, tile.index)
            if hash_from_tile(parent, data[parent], x, self._hasher) != _tile_hash(
                data[tile], self._hasher
            ):
                raise TlogError(TILE_MISMATCH, f"{tile.path} does not match {parent.path}")


# --------------------------------------------------------------------------------------
# Signed notes and checkpoints (C2SP signed-note, tlog-checkpoint)
# --------------------------------------------------------------------------------------


def _check_key_name(name: str) -> None:
    if not name or "+" in name or any(c.isspace() for c in name) or not name.isprintable():
        raise TerminalError(f"not a signed-note key name: {name!r}")


def _signature_type(suite: str) -> bytes:
    try:
        return SIGNATURE_TYPES[suite]
    except KeyError:
        raise TerminalError(f"no signed-note signature type for suite {suite!r}") from None


def note_key_id(name: str, suite: str, public: bytes) -> int:
    """C2SP signed-note key ID: SHA-256(name || 0x0A || signature type || public key)[:4] as a
    big-endian uint32 (SHA-256 in both suites: an identifier, like CryptoSuite.key_id)."""
    digest = hashlib.sha256(name.encode() + b"\n" + _signature_type(suite) + public).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class NoteVerifier:
    """A known key: its name, suite and raw public key."""

    name: str
    suite: str
    public: bytes

    def __post_init__(self) -> None:
        _check_key_name(self.name)
        _signature_type(self.suite)

    @property
    def key_id(self) -> int:
        return note_key_id(self.name, self.suite, self.public)

    def verify(self, text: bytes, signature: bytes) -> bool:
        return get_suite(self.suite).verify(self.public, signature, text)

    def verifier_key(self) -> str:
        """``<name>+<key ID in hex>+<base64(signature type || public key)>`` (the golang
        sumdb/note form in which a log publishes its key)."""
        encoded = base64.b64encode(_signature_type(self.suite) + self.public).decode()
        return f"{self.name}+{self.key_id:08x}+{encoded}"


def parse_verifier_key(text: str) -> NoteVerifier:
    """The verifier of a :meth:`NoteVerifier.verifier_key` string; TerminalError if malformed."""
    parts = text.split("+", 2)  # the base64 key may hold more plus signs
    if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        raise TerminalError(f"not a verifier key: {text!r}")
    name, key_id = parts[0], int(parts[1], 16)
    try:
        raw = base64.b64decode(parts[2], validate=True)
    except (binascii.Error, ValueError):
        raise TerminalError(f"not a verifier key: {text!r}") from None
    for suite, kind in SIGNATURE_TYPES.items():
        if raw.startswith(kind) and len(raw) == len(kind) + PUBLIC_KEY_BYTES[suite]:
            verifier = NoteVerifier(name, suite, raw[len(kind) :])
            if verifier.key_id != key_id:
                raise TerminalError(f"the key ID of {text!r} does not match its key")
            return verifier
    raise TerminalError(f"unknown signature type or key size in {text!r}")


@dataclass(frozen=True)
class NoteSigner:
    """A key that signs notes under ``name``. Its repr never shows the key bytes."""

    name: str
    suite: str
    private: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_key_name(self.name)
        _signature_type(self.suite)

    @classmethod
    def from_signing_key(cls, name: str, key: SigningKey) -> NoteSigner:
        """A zone's signing key (ferry.keys) signing notes under ``name``."""
        return cls(name, key.suite, key.private)

    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.suite, get_suite(self.suite).public_key(self.private))

    def signature_line(self, text: bytes) -> str:
        """``— <name> <base64(key ID || signature over text)>`` and a newline."""
        verifier = self.verifier()
        signature = get_suite(self.suite).sign(self.private, text)
        encoded = base64.b64encode(verifier.key_id.to_bytes(4, "big") + signature).decode()
        return f"{_EM_DASH} {self.name} {encoded}\n"


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint opened by :func:`open_checkpoint`: signed by at least one known key."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...]
    note: str = field(repr=False)  # the whole note as received, every signature line included
    signed_by: tuple[str, ...]  # known keys whose signatures verified, in note order

    @property
    def body(self) -> str:
        """The signed text: origin, size, root hash and extension lines, each ending in newline."""
        return self.note[: self.note.rindex("\n\n") + 1]


def checkpoint_body(
    origin: str, size: int, root_hash: bytes, extensions: Sequence[str] = ()
) -> str:
    """``<origin>\\n<size>\\n<base64 root hash>\\n`` and any extension lines (C2SP
    tlog-checkpoint)."""
    for line in (origin, *extensions):
        if not line or any(c < " " for c in line) or not line.isprintable():
            raise TerminalError(f"a checkpoint line must be non-empty printable text: {line!r}")
    if not 0 <= size <= _MAX_SIZE:
        raise TerminalError(f"not a tree size: {size}")
    if not _is_hash(root_hash):
        raise TerminalError("a checkpoint's root hash is 32 bytes")
    lines = [origin, str(size), base64.b64encode(root_hash).decode(), *extensions]
    return "".join(line + "\n" for line in lines)


def sign_checkpoint(
    origin: str,
    size: int,
    root_hash: bytes,
    signers: NoteSigner | Sequence[NoteSigner],
    extensions: Sequence[str] = (),
) -> str:
    """The checkpoint of a tree as a signed note, with one signature line per signer."""
    chosen = [signers] if isinstance(signers, NoteSigner) else list(signers)
    if not chosen:
        raise TerminalError("a checkpoint needs at least one signer")
    keys = [(v.name, v.key_id) for v in (signer.verifier() for signer in chosen)]
    if len(set(keys)) != len(keys):
        raise TerminalError("a key signs a checkpoint once")
    body = checkpoint_body(origin, size, root_hash, extensions)
    text = body.encode()
    return body + "\n" + "".join(signer.signature_line(text) for signer in chosen)


def cosign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    """The note of ``checkpoint`` with ``signer``'s signature line added (a witness cosigning
    a checkpoint it has opened and checked); an earlier line of the same key is replaced."""
    verifier = signer.verifier()
    body = checkpoint.body
    kept = [
        line + "\n"
        for line in checkpoint.note[len(body) + 1 :].splitlines()
        if _line_key(line) != (verifier.name, verifier.key_id)
    ]
    return body + "\n" + "".join(kept) + signer.signature_line(body.encode())


def _line_key(line: str) -> tuple[str, int] | None:
    parsed = _parse_signature_line(line)
    return None if parsed is None else (parsed[0], parsed[1])


def _parse_signature_line(line: str) -> tuple[str, int, bytes] | None:
    if not line.startswith(_EM_DASH + " "):
        return None
    fields = line[2:].split(" ")
    if len(fields) != 2:
        return None
    name, encoded = fields
    try:
        _check_key_name(name)
        raw = base64.b64decode(encoded, validate=True)
    except (TerminalError, binascii.Error, ValueError):
        return None
    if len(raw) < 5:
        return None
    return name, int.from_bytes(raw[:4], "big"), raw[4:]


def open_checkpoint(
    note: str | bytes, verifiers: Sequence[NoteVerifier], *, require: Collection[str] = ()
) -> Checkpoint:
    """The checkpoint in a signed note, after its signatures are verified (before its body is
    read). Lines from unknown keys are ignored; a known key's bad signature refuses the note
    (BAD_SIGNATURE); so does no known signature (UNKNOWN_KEY), a ``require``d key name that
    did not sign (MISSING_SIGNATURE), or anything malformed (BAD_FORMAT)."""
    text = _note_text(note)
    split = text.rfind("\n\n")
    if split < 0 or not text.endswith("\n"):
        raise CheckpointRefused(BAD_FORMAT, "no blank line between the text and the signatures")
    body, lines = text[: split + 1], text[split + 2 :].splitlines()
    if not lines or len(lines) > MAX_SIGNATURES:
        raise CheckpointRefused(BAD_FORMAT, f"{len(lines)} signature lines (1 to {MAX_SIGNATURES})")
    known = _verifier_table(verifiers)
    signed: list[str] = []
    for line in lines:
        parsed = _parse_signature_line(line)
        if parsed is None:
            raise CheckpointRefused(BAD_FORMAT, f"not a signature line: {line[:80]!r}")
        name, key_id, signature = parsed
        verifier = known.get((name, key_id))
        if verifier is None:
            continue
        if not verifier.verify(body.encode(), signature):
            raise CheckpointRefused(
                BAD_SIGNATURE, f"the signature of {name}+{key_id:08x} does not verify"
            )
        if name not in signed:
            signed.append(name)
    if not signed:
        raise CheckpointRefused(UNKNOWN_KEY, "no signature from a known key")
    missing = sorted(set(require) - set(signed))
    if missing:
        raise CheckpointRefused(MISSING_SIGNATURE, f"not signed by {', '.join(missing)}")
    origin, size, root_hash, extensions = _parse_body(body)
    return Checkpoint(origin, size, root_hash, extensions, text, tuple(signed))


def _note_text(note: str | bytes) -> str:
    try:
        raw = note.encode() if isinstance(note, str) else note
        text = raw.decode()
    except UnicodeError:  # undecodable bytes, or a str holding lone surrogates
        raise CheckpointRefused(BAD_FORMAT, "a note is UTF-8 text") from None
    if len(raw) > MAX_NOTE_BYTES:
        raise CheckpointRefused(
            BAD_FORMAT, f"a note of {len(raw)} bytes (at most {MAX_NOTE_BYTES})"
        )
    if any(c < " " and c != "\n" for c in text):
        raise CheckpointRefused(BAD_FORMAT, "a note holds no control characters but newline")
    return text


def _verifier_table(verifiers: Sequence[NoteVerifier]) -> dict[tuple[str, int], NoteVerifier]:
    table: dict[tuple[str, int], NoteVerifier] = {}
    for verifier in verifiers:
        key = (verifier.name, verifier.key_id)
        if table.setdefault(key, verifier) != verifier:
            raise TerminalError(f"two verifiers share the name and key ID {key[0]}+{key[1]:08x}")
    return table


def _parse_body(body: str) -> tuple[str, int, bytes, tuple[str, ...]]:
    lines = body[:-1].split("\n")
    if len(lines) < 3 or not all(lines):
        raise CheckpointRefused(
            BAD_FORMAT, "a checkpoint is origin, size, root hash and non-empty lines"
        )
    origin, size_text, root_text, *extensions = lines
    if _SIZE.fullmatch(size_text) is None or int(size_text) > _MAX_SIZE:
        raise CheckpointRefused(BAD_FORMAT, f"not a tree size: {size_text[:40]!r}")
    try:
        root_hash = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointRefused(BAD_FORMAT, "the root hash is not base64") from None
    if len(root_hash) != HASH_SIZE or base64.b64encode(root_hash).decode() != root_text:
        raise CheckpointRefused(BAD_FORMAT, "the root hash is not the base64 of 32 bytes")
    return origin, int(size_text), root_hash, tuple(extensions)


# --------------------------------------------------------------------------------------
# Consecutive checkpoints
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Extended:
    """The new checkpoint extends the old one (or repeats it)."""

    old_size: int
    new_size: int


@dataclass(frozen=True)
class ExtensionRefused:
    """The new checkpoint does not provably extend the old one; ROLLBACK and FORK are
    security events (SECURITY_CODES)."""

    code: str
    detail: str

    @property
    def security(self) -> bool:
        return self.code in SECURITY_CODES


ExtensionVerdict = Extended | ExtensionRefused


def verify_extension(
    old: Checkpoint, new: Checkpoint, proof: Sequence[bytes], *, hasher: TreeHasher
) -> ExtensionVerdict:
    """Whether ``new`` extends ``old``, both opened from the same log, by the consistency
    ``proof`` between them. A proof of the wrong shape (count or hash size for the two sizes)
    is BAD_PROOF; a well-formed proof that fails, or two roots for one size, is a FORK."""
    if old.origin != new.origin:
        return ExtensionRefused(ORIGIN_MISMATCH, f"{old.origin!r} and {new.origin!r} are two logs")
    if new.size < old.size:
        return ExtensionRefused(
            ROLLBACK, f"the tree went back from {old.size} to {new.size} leaves"
        )
    if not all(_is_hash(p) for p in proof):
        return ExtensionRefused(BAD_PROOF, f"a proof is made of {HASH_SIZE}-byte hashes")
    expected = consistency_proof_size(old.size, new.size)
    if new.size == old.size and new.root_hash != old.root_hash:
        return ExtensionRefused(FORK, f"two root hashes for the tree of {new.size} leaves")
    if len(proof) != expected:
        return ExtensionRefused(
            BAD_PROOF, f"{len(proof)} hashes; {old.size} to {new.size} leaves takes {expected}"
        )
    if old.size == 0 and old.root_hash != hasher.empty_root():
        return ExtensionRefused(FORK, "the old checkpoint's empty tree has another root")
    if not verify_consistency(hasher, old.size, new.size, old.root_hash, new.root_hash, proof):
        return ExtensionRefused(
            FORK, f"the tree of {new.size} leaves does not extend the one of {old.size}"
        )
    return Extended(old.size, new.size)
