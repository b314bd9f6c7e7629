"""The audit log (ferry.tlog): RFC 6962 hashing and proofs against published vectors and the
RFC's own definitions, the stored-hash tree, tiles, signed checkpoints and their extension.

Vectors: RFC 6962 hashes, roots, inclusion and consistency proofs over the eight leaves of
Certificate Transparency's reference tests, as github.com/transparency-dev/merkle carries them
(rfc6962/rfc6962_test.go, proof/verify_test.go); a real inclusion and consistency proof of
Google's Argon 2020 CT log from golang.org/x/mod sumdb/tlog/testdata (vectors/tlog/); the
signed-note key, key ID and signatures of golang.org/x/mod sumdb/note/note_test.go; tile paths
and tile counts from C2SP tlog-tiles and sumdb/tlog/tlog_test.go.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferry.keys import generate_zone_key, load_signing_key
from ferry.suites import sm3
from ferry.tlog import (
    BAD_FORMAT,
    BAD_PROOF,
    BAD_SIGNATURE,
    FORK,
    MISSING_SIGNATURE,
    ORIGIN_MISMATCH,
    ROLLBACK,
    STORAGE_MISMATCH,
    TILE_MISMATCH,
    UNKNOWN_KEY,
    Appended,
    Checkpoint,
    CheckpointRefused,
    Extended,
    ExtensionRefused,
    Frontier,
    MemoryHashStore,
    NoteSigner,
    NoteVerifier,
    Tile,
    TileHashReader,
    TlogError,
    TreeHasher,
    append_leaves,
    consistency_path,
    consistency_proof_size,
    cosign_checkpoint,
    hash_from_tile,
    inclusion_path,
    inclusion_proof_size,
    merkle_tree_hash,
    new_tiles,
    note_key_id,
    open_checkpoint,
    parse_tile_path,
    parse_verifier_key,
    prove_consistency,
    prove_inclusion,
    read_tile_data,
    sign_checkpoint,
    split_stored_hash_index,
    stored_hash_count,
    stored_hash_index,
    tile_for_index,
    tree_hash,
    tree_hasher,
    verify_consistency,
    verify_extension,
    verify_inclusion,
)
from schemas.exceptions import TerminalError

SHA256 = tree_hasher("intl")
SM3 = tree_hasher("gm")
VECTORS = Path(__file__).parent / "vectors" / "tlog"


def h(hex_digits: str) -> bytes:
    return bytes.fromhex(hex_digits)


class CountingReader:
    """A HashReader over a store that counts calls and hashes read."""

    def __init__(self, store: MemoryHashStore) -> None:
        self.store = store
        self.calls = 0
        self.hashes = 0

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        assert list(indexes) == sorted(set(indexes)), "readers are asked in increasing order"
        self.calls += 1
        self.hashes += len(indexes)
        return self.store.read_hashes(indexes)


def build(leaf_hashes: Sequence[bytes], hasher: TreeHasher = SHA256) -> MemoryHashStore:
    store = MemoryHashStore()
    store.write(append_leaves(0, leaf_hashes, store, hasher))
    return store


def leaves(count: int, hasher: TreeHasher = SHA256, tag: str = "event") -> list[bytes]:
    return [hasher.leaf_hash(f"{tag} {i}".encode()) for i in range(count)]


# --------------------------------------------------------------------------------------
# RFC 6962 vectors (Certificate Transparency's reference tests, via transparency-dev/merkle)
# --------------------------------------------------------------------------------------

CT_LEAVES = [h(x) for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657")] + [
    h("606162636465666768696a6b6c6d6e6f")
]
CT_ROOTS = [
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]
# (leaf index, tree size, audit path); the source numbers leaves from 1.
CT_INCLUSION = [
    (0, 1, []),
    (0, 8, [
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ]),
    (5, 8, [
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    ]),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (1, 5, [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
    ]),
]  # fmt: skip
# (old size, new size, consistency proof)
CT_CONSISTENCY = [
    (1, 1, []),
    (1, 8, [
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ]),
    (6, 8, [
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    ]),
    (2, 5, [
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
    ]),
    (6, 7, [
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    ]),
]  # fmt: skip
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")
EMPTY_SHA256 = h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


def test_rfc6962_hashes() -> None:
    assert SHA256.empty_root() == EMPTY_SHA256
    assert SHA256.leaf_hash(b"") == CT_ROOTS[0]  # the empty leaf is not the empty tree
    assert SHA256.leaf_hash(b"L123456") == h(
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert SHA256.node_hash(b"N123", b"N456") == h(
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


def test_gm_hasher_is_sm3_with_the_same_prefixes() -> None:
    assert SM3.name == "SM3" and SHA256.name == "SHA-256"
    # SM3 of the empty string (GB/T 32905 as OpenSSL computes it), then the prefixes.
    assert SM3.empty_root() == h("1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b")
    assert SM3.leaf_hash(b"abc") == sm3(b"\x00abc") != SHA256.leaf_hash(b"abc")
    assert SM3.node_hash(b"l", b"r") == SM3.digest(b"\x01lr")


def test_merkle_tree_hash_of_the_reference_leaves() -> None:
    hashes = [SHA256.leaf_hash(d) for d in CT_LEAVES]
    assert merkle_tree_hash([], SHA256) == EMPTY_SHA256
    for size in range(1, 9):
        assert merkle_tree_hash(hashes[:size], SHA256) == CT_ROOTS[size - 1]
    store = build(hashes)
    for size in range(1, 9):
        assert tree_hash(size, store, SHA256) == CT_ROOTS[size - 1]
    assert tree_hash(0, store, SHA256) == EMPTY_SHA256


@pytest.mark.parametrize(("index", "size", "proof"), CT_INCLUSION)
def test_inclusion_vectors(index: int, size: int, proof: list[bytes]) -> None:
    hashes = [SHA256.leaf_hash(d) for d in CT_LEAVES]
    assert inclusion_path(index, hashes[:size], SHA256) == proof
    assert prove_inclusion(size, index, build(hashes), SHA256) == proof
    assert inclusion_proof_size(index, size) == len(proof)
    root, leaf = CT_ROOTS[size - 1], hashes[index]
    assert verify_inclusion(SHA256, index, size, leaf, proof, root)
    # The corruptions transparency-dev/merkle checks for these vectors, all refused.
    probes: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (index - 1, size, leaf, root, proof),
        (index + 1, size, leaf, root, proof),
        (index ^ 2, size, leaf, root, proof),
        (index, size * 2, leaf, root, proof),
        (index, size // 2, leaf, root, proof),
        (index, size, b"WrongLeaf", root, proof),
        (index, size, leaf, EMPTY_SHA256, proof),
        (index, size, leaf, SOME_HASH, proof),
        (index, size, leaf, root, [*proof, b""]),
        (index, size, leaf, root, [*proof, root]),
        (index, size, leaf, root, [b"", *proof]),
        (index, size, leaf, root, [root, *proof]),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([proof[i][0] ^ 8]) + proof[i][1:]
        probes.append((index, size, leaf, root, flipped))
    if proof:
        probes.append((index, size, leaf, root, proof[:-1]))
    if len(proof) > 1:
        probes.append((index, size, leaf, root, [proof[0], SOME_HASH, *proof[1:]]))
    for p_index, p_size, p_leaf, p_root, p_proof in probes:
        assert not verify_inclusion(SHA256, p_index, p_size, p_leaf, p_proof, p_root)


def test_inclusion_edge_cases() -> None:
    leaf = SHA256.leaf_hash(b"data")
    assert verify_inclusion(SHA256, 0, 1, leaf, [], leaf)  # a one-leaf tree's root is the leaf
    assert not verify_inclusion(SHA256, 0, 1, leaf, [], b"")
    assert not verify_inclusion(SHA256, 0, 1, b"", [], leaf)
    for index, size in ((0, 0), (1, 0), (2, 1)):
        assert not verify_inclusion(SHA256, index, size, SOME_HASH, [], EMPTY_SHA256)


@pytest.mark.parametrize(("old", "new", "proof"), CT_CONSISTENCY)
def test_consistency_vectors(old: int, new: int, proof: list[bytes]) -> None:
    hashes = [SHA256.leaf_hash(d) for d in CT_LEAVES]
    assert consistency_path(old, hashes[:new], SHA256) == proof
    assert prove_consistency(old, new, build(hashes), SHA256) == proof
    assert consistency_proof_size(old, new) == len(proof)
    root1, root2 = CT_ROOTS[old - 1], CT_ROOTS[new - 1]
    assert verify_consistency(SHA256, old, new, root1, root2, proof)
    if not proof:
        return
    probes: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (old - 1, new, root1, root2, proof),
        (old + 1, new, root1, root2, proof),
        (old ^ 2, new, root1, root2, proof),
        (old, new * 2, root1, root2, proof),
        (old, new // 2, root1, root2, proof),
        (old, new, b"WrongRoot", root2, proof),
        (old, new, root1, b"WrongRoot", proof),
        (old, new, root2, root1, proof),
        (old, new, root1, root2, []),
        (old, new, root1, root2, [*proof, b""]),
        (old, new, root1, root2, [*proof, root1]),
        (old, new, root1, root2, [*proof, root2]),
        (old, new, root1, root2, [b"", *proof]),
        (old, new, root1, root2, [root1, *proof]),
        (old, new, root1, root2, [root2, *proof]),
        (old, new, root1, root2, [proof[0], *proof]),
        (old, new, root1, root2, proof[:-1]),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([proof[i][0] ^ 16]) + proof[i][1:]
        probes.append((old, new, root1, root2, flipped))
    for p_old, p_new, p_root1, p_root2, p_proof in probes:
        assert not verify_consistency(SHA256, p_old, p_new, p_root1, p_root2, p_proof)


def test_consistency_edge_cases() -> None:
    assert verify_consistency(SHA256, 0, 0, EMPTY_SHA256, EMPTY_SHA256, [])
    assert verify_consistency(SHA256, 0, 5, EMPTY_SHA256, CT_ROOTS[4], [])
    assert verify_consistency(SHA256, 1, 1, CT_ROOTS[0], CT_ROOTS[0], [])
    assert not verify_consistency(SHA256, 0, 5, SOME_HASH, CT_ROOTS[4], [])  # not the empty tree
    assert not verify_consistency(SHA256, 0, 0, EMPTY_SHA256, SOME_HASH, [])
    assert not verify_consistency(SHA256, 1, 1, CT_ROOTS[0], CT_ROOTS[1], [])
    assert not verify_consistency(SHA256, 1, 1, CT_ROOTS[0], CT_ROOTS[0], [EMPTY_SHA256])
    assert not verify_consistency(SHA256, 0, 1, EMPTY_SHA256, CT_ROOTS[0], [EMPTY_SHA256])
    assert not verify_consistency(SHA256, 2, 1, CT_ROOTS[1], CT_ROOTS[0], [])  # back in time
    assert not verify_consistency(SHA256, 1, 2, CT_ROOTS[0], CT_ROOTS[1], [])  # proof missing


def test_a_real_certificate_transparency_log() -> None:
    ct = json.loads((VECTORS / "ct-argon2020.json").read_text())
    root = base64.b64decode(ct["sha256_root_hash"])
    leaf = SHA256.leaf_hash(base64.b64decode(ct["leaf_input"]))
    path = [base64.b64decode(x) for x in ct["audit_path"]]
    size, index = ct["tree_size"], ct["leaf_index"]
    assert inclusion_proof_size(index, size) == len(path)
    assert verify_inclusion(SHA256, index, size, leaf, path, root)
    assert not verify_inclusion(SHA256, index + 1, size, leaf, path, root)
    first, first_root = ct["consistency_first"], base64.b64decode(ct["consistency_first_root"])
    proof = [base64.b64decode(x) for x in ct["consistency"]]
    assert consistency_proof_size(first, size) == len(proof)
    assert verify_consistency(SHA256, first, size, first_root, root, proof)
    flipped = [proof[0], bytes([proof[1][0] ^ 1]) + proof[1][1:], *proof[2:]]
    assert not verify_consistency(SHA256, first, size, first_root, root, flipped)
    assert not verify_consistency(SHA256, first, size, root, root, proof)


# --------------------------------------------------------------------------------------
# Stored hashes
# --------------------------------------------------------------------------------------


def test_stored_hash_index_order() -> None:
    # Leaf 0; leaf 1 and the node over 0-1; leaf 2; leaf 3, node 2-3, node 0-3; leaf 4 ...
    order = [(0, 0), (0, 1), (1, 0), (0, 2), (0, 3), (1, 1), (2, 0), (0, 4)]
    assert [stored_hash_index(level, n) for level, n in order] == list(range(8))
    for level in range(10):
        for n in range(100):
            assert split_stored_hash_index(stored_hash_index(level, n)) == (level, n)
    assert [stored_hash_count(n) for n in range(9)] == [0, 1, 3, 4, 7, 8, 10, 11, 15]


def test_stored_tree_equals_the_merkle_tree_hash_up_to_300_leaves() -> None:
    hashes = leaves(300)
    store = MemoryHashStore()
    frontier = Frontier(0, [], SHA256)
    for n, leaf in enumerate(hashes):
        written = frontier.append(leaf)
        # 1 + the trailing one bits of the leaf's index: at most log2(size) + 1.
        assert len(written) == 1 + ((n ^ (n + 1)).bit_length() - 1)
        assert len(written) <= (n + 1).bit_length()
        store.hashes.extend(written)
        assert len(store.hashes) == stored_hash_count(n + 1)
        assert frontier.root() == merkle_tree_hash(hashes[: n + 1], SHA256)
    for size in range(301):
        assert tree_hash(size, store, SHA256) == merkle_tree_hash(hashes[:size], SHA256)


def test_the_gm_tree_is_sm3_throughout() -> None:
    hashes = leaves(37, SM3)
    store = build(hashes, SM3)
    assert tree_hash(37, store, SM3) == merkle_tree_hash(hashes, SM3)
    assert tree_hash(37, store, SM3) != merkle_tree_hash(leaves(37), SHA256)
    proof = prove_inclusion(37, 20, store, SM3)
    assert verify_inclusion(SM3, 20, 37, hashes[20], proof, tree_hash(37, store, SM3))
    assert not verify_inclusion(SHA256, 20, 37, hashes[20], proof, tree_hash(37, store, SM3))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=12))
def test_batches_write_what_single_appends_write(batches: list[int]) -> None:
    hashes = leaves(sum(batches))
    one_by_one = build(hashes)
    batched, size = MemoryHashStore(), 0
    for count in batches:
        reader = CountingReader(batched)
        appended = append_leaves(size, hashes[size : size + count], reader, SHA256)
        # One read of the frontier: at most log2(size) + 1 hashes, whatever the batch.
        assert reader.calls == (1 if size else 0)
        assert reader.hashes == size.bit_count() <= size.bit_length()
        assert appended.start == stored_hash_count(size) == len(batched.hashes)
        batched.write(appended)
        size = appended.size
        assert appended.root == merkle_tree_hash(hashes[:size], SHA256)
    assert batched.hashes == one_by_one.hashes


def test_a_store_must_be_written_in_order() -> None:
    store = build(leaves(3))
    stale = Appended(stored_hash_count(2), (SOME_HASH,), 3, SOME_HASH)
    with pytest.raises(ValueError, match="starts at 3"):
        store.write(stale)


def test_a_reader_giving_too_few_hashes_is_refused() -> None:
    class Short:
        def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
            return [SOME_HASH] * (len(indexes) - 1)

    with pytest.raises(TlogError) as refused:
        tree_hash(7, Short(), SHA256)
    assert refused.value.code == STORAGE_MISMATCH


def _shape(index: int, size: int) -> list[bool]:
    """Whether each audit-path hash is a left sibling, lowest first (the RFC's split)."""
    lefts: list[bool] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = 1 << ((hi - lo - 1).bit_length() - 1)
        if index < lo + k:
            lefts.append(False)
            hi = lo + k
        else:
            lefts.append(True)
            lo += k
    return lefts[::-1]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_inclusion_proofs(data: st.DataObject) -> None:
    size = data.draw(st.integers(min_value=1, max_value=400), label="size")
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    hashes = leaves(size)
    store = build(hashes)
    root = tree_hash(size, store, SHA256)
    reader = CountingReader(store)
    proof = prove_inclusion(size, index, reader, SHA256)
    assert proof == inclusion_path(index, hashes, SHA256)
    # One read; O(log n) hashes (left siblings are one stored hash, the right fringe a few).
    assert reader.calls <= 1 and reader.hashes <= 2 * size.bit_length()
    assert verify_inclusion(SHA256, index, size, hashes[index], proof, root)
    if proof:
        at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="hash")
        byte = data.draw(st.integers(min_value=0, max_value=31), label="byte")
        bad = list(proof)
        bad[at] = bad[at][:byte] + bytes([bad[at][byte] ^ 1]) + bad[at][byte + 1 :]
        assert not verify_inclusion(SHA256, index, size, hashes[index], bad, root)
    other = data.draw(st.integers(min_value=0, max_value=size).filter(lambda i: i != index))
    assert not verify_inclusion(SHA256, other, size, hashes[index], proof, root)
    flipped_leaf = bytes([hashes[index][0] ^ 0x80]) + hashes[index][1:]
    assert not verify_inclusion(SHA256, index, size, flipped_leaf, proof, root)
    # A wrong size passes only where the path has the very same shape (it then computes
    # the same root: the root commits to the leaves, the checkpoint signs size and root).
    wrong = data.draw(
        st.integers(min_value=index + 1, max_value=2 * size).filter(lambda s: s != size)
    )
    same_shape = _shape(index, wrong) == _shape(index, size)
    assert verify_inclusion(SHA256, index, wrong, hashes[index], proof, root) == same_shape


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_consistency_proofs(data: st.DataObject) -> None:
    new = data.draw(st.integers(min_value=1, max_value=400), label="new")
    old = data.draw(st.integers(min_value=1, max_value=new), label="old")
    hashes = leaves(new)
    store = build(hashes)
    old_root, new_root = tree_hash(old, store, SHA256), tree_hash(new, store, SHA256)
    reader = CountingReader(store)
    proof = prove_consistency(old, new, reader, SHA256)
    assert proof == consistency_path(old, hashes, SHA256)
    assert reader.calls <= 1 and reader.hashes <= 2 * new.bit_length()
    assert len(proof) == consistency_proof_size(old, new)
    assert verify_consistency(SHA256, old, new, old_root, new_root, proof)
    if proof:
        at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="hash")
        bad = list(proof)
        bad[at] = bytes([bad[at][0] ^ 1]) + bad[at][1:]
        assert not verify_consistency(SHA256, old, new, old_root, new_root, bad)
    # A fork: one of the first ``old`` leaves rewritten. No proof joins the old tree to the
    # forked one, neither the honest proof nor the forked tree's own.
    changed = data.draw(st.integers(min_value=0, max_value=old - 1), label="rewritten leaf")
    forked = list(hashes)
    forked[changed] = SHA256.leaf_hash(b"rewritten")
    forked_store = build(forked)
    forked_root = tree_hash(new, forked_store, SHA256)
    forked_proof = prove_consistency(old, new, forked_store, SHA256)
    for candidate in (proof, forked_proof):
        assert not verify_consistency(SHA256, old, new, old_root, forked_root, candidate)


@given(st.integers(min_value=0, max_value=48), st.integers(min_value=0, max_value=1 << 40))
def test_stored_hash_index_round_trips_far_out(level: int, n: int) -> None:
    assert split_stored_hash_index(stored_hash_index(level, n)) == (level, n)


def test_reads_stay_logarithmic_in_a_large_tree() -> None:
    size = 100_003
    store = build(leaves(size))
    root = tree_hash(size, store, SHA256)
    for index in (0, 1, 65_535, 65_536, 99_999, size - 1):
        reader = CountingReader(store)
        proof = prove_inclusion(size, index, reader, SHA256)
        assert reader.calls == 1 and reader.hashes <= 2 * size.bit_length()
        assert verify_inclusion(
            SHA256, index, size, store.hashes[stored_hash_index(0, index)], proof, root
        )
    for old in (1, 3, 65_536, 70_001, size - 1):
        reader = CountingReader(store)
        proof = prove_consistency(old, size, reader, SHA256)
        assert reader.calls == 1 and reader.hashes <= 2 * size.bit_length()
        assert verify_consistency(SHA256, old, size, tree_hash(old, store, SHA256), root, proof)
    reader = CountingReader(store)
    appended = append_leaves(size, leaves(5, tag="next"), reader, SHA256)
    assert reader.calls == 1 and reader.hashes == size.bit_count()
    assert len(appended.hashes) == stored_hash_count(size + 5) - stored_hash_count(size)


def test_proof_arguments_are_checked() -> None:
    store = build(leaves(5))
    with pytest.raises(ValueError):
        prove_inclusion(5, 5, store, SHA256)
    with pytest.raises(ValueError):
        prove_consistency(6, 5, store, SHA256)
    with pytest.raises(ValueError):
        inclusion_path(3, leaves(3), SHA256)


# --------------------------------------------------------------------------------------
# Tiles
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "tile"),
    [
        ("tile/0/000", Tile(0, 0)),
        ("tile/0/001", Tile(0, 1)),
        ("tile/0/001.p/5", Tile(0, 1, 5)),
        ("tile/5/x123/x456/078", Tile(5, 123456078)),
        ("tile/5/x123/x456/078.p/2", Tile(5, 123456078, 2)),
        ("tile/1/x003/x057/500", Tile(1, 3057500)),
        ("tile/0/x001/x234/067", Tile(0, 1234067)),  # C2SP tlog-tiles' example
        ("tile/63/x001/000.p/255", Tile(63, 1000, 255)),
    ],
)
def test_tile_paths(path: str, tile: Tile) -> None:
    assert tile.path == path
    assert parse_tile_path(path) == tile


@pytest.mark.parametrize(
    "path",
    [
        "tile/3/5/123/456/078",  # a height element (golang's form) or unprefixed elements
        "tile/0/123/456",
        "tile/-1/000",
        "tile/64/000",
        "tile/01/000",
        "tile/0/x000/001",  # tile 1 has one path: tile/0/001
        "tile/0/1",
        "tile/0/0001",
        "tile/0/001.p/0",
        "tile/0/001.p/256",  # a full tile has no suffix
        "tile/0/001.p/05",
        "tile/0/001.p/",
        "tile/entries/001",
        "tile/0/001/",
        "/tile/0/001",
    ],
)
def test_bad_tile_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError):
        parse_tile_path(path)


def test_tiles_of_a_tree_as_c2sp_describes_them() -> None:
    # "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial level
    # 0 tile of width 112, one full level 1 tile, one partial level 1 tile of width 17, and one
    # partial level 2 tile of width 1"; "a tree of size 256 ... a full level 0 tile and a
    # partial level 1 tile of width 1".
    tiles = new_tiles(0, 70_000)
    assert tiles == [Tile(0, n) for n in range(273)] + [
        Tile(0, 273, 112),
        Tile(1, 0),
        Tile(1, 1, 17),
        Tile(2, 0, 1),
    ]
    assert new_tiles(0, 256) == [Tile(0, 0), Tile(1, 0, 1)]
    assert new_tiles(0, 0) == [] and new_tiles(5, 5) == []
    # Growing 255 -> 257 fills tile 0, starts tile 1 and level 1.
    assert new_tiles(255, 257) == [Tile(0, 0), Tile(0, 1, 1), Tile(1, 0, 1)]
    assert new_tiles(300, 301) == [Tile(0, 1, 45)]


def _tiles_of(store: MemoryHashStore, old: int, new: int, into: dict[Tile, bytes]) -> None:
    for tile in new_tiles(old, new):
        into[tile] = read_tile_data(tile, store)


@pytest.mark.parametrize("hasher", [SHA256, SM3], ids=["sha256", "sm3"])
def test_tiles_round_trip(hasher: TreeHasher) -> None:
    sizes = [1, 2, 255, 256, 257, 511, 512, 700, 65_535, 65_536, 65_537]
    hashes = leaves(sizes[-1], hasher)
    store, size = MemoryHashStore(), 0
    published: dict[Tile, bytes] = {}
    for target in sizes:
        appended = append_leaves(size, hashes[size:target], store, hasher)
        store.write(appended)
        _tiles_of(store, size, target, published)
        size = target
        reader = TileHashReader(size, appended.root, published.__getitem__, hasher)
        count = stored_hash_count(size)
        probe = range(count) if count < 2000 else [*range(600), *range(count - 600, count), 70_001]
        wanted = sorted(probe)
        assert reader.read_hashes(wanted) == [store.hashes[i] for i in wanted]
        # Proofs through tiles are the proofs from the stored hashes.
        index = size // 3
        assert prove_inclusion(size, index, reader, hasher) == prove_inclusion(
            size, index, store, hasher
        )
        assert tree_hash(size, reader, hasher) == appended.root
        if size > 1:
            assert prove_consistency(size // 2, size, reader, hasher) == prove_consistency(
                size // 2, size, store, hasher
            )


def test_hash_from_tile_reads_within_the_tile() -> None:
    store = build(leaves(1000))
    for index in (0, 1, 2, 300, stored_hash_index(3, 5), stored_hash_index(8, 2)):
        tile, start, end = tile_for_index(index)
        full = Tile(tile.level, tile.index, min(256, (1000 >> (8 * tile.level)) - tile.index * 256))
        data = read_tile_data(full, store)
        assert hash_from_tile(full, data, index, SHA256) == store.hashes[index]
        assert end - start == 32 << (split_stored_hash_index(index)[0] % 8)
    with pytest.raises(ValueError, match="is in tile/0/001"):
        hash_from_tile(
            Tile(0, 0), read_tile_data(Tile(0, 0), store), stored_hash_index(0, 256), SHA256
        )


def test_tampered_tiles_are_refused() -> None:
    size = 70_000
    store = build(leaves(size))
    root = tree_hash(size, store, SHA256)
    published: dict[Tile, bytes] = {}
    _tiles_of(store, 0, size, published)
    leaf_5000 = stored_hash_index(0, 5000)  # in full tile 0/019, checked against 1/000

    def tampered(target: Tile, data: bytes) -> TileHashReader:
        tiles = dict(published)
        tiles[target] = data
        return TileHashReader(size, root, tiles.__getitem__, SHA256)

    full, partial = Tile(0, 19), Tile(0, 273, 112)
    for target in (full, Tile(1, 0), partial, Tile(1, 1, 17), Tile(2, 0, 1)):
        data = published[target]
        for bad in (bytes([data[0] ^ 1]) + data[1:], data[:-32], data + SOME_HASH):
            with pytest.raises(TlogError) as refused:
                tampered(target, bad).read_hashes([leaf_5000])
            assert refused.value.code == TILE_MISMATCH
    # A wrong root refuses every read; a leaf elsewhere is not served from a bad tile.
    with pytest.raises(TlogError):
        TileHashReader(size, SOME_HASH, published.__getitem__, SHA256).read_hashes([0])
    other = tampered(full, bytes(8192))
    assert other.read_hashes([stored_hash_index(0, 1)]) == [store.hashes[stored_hash_index(0, 1)]]
    with pytest.raises(ValueError):
        other.read_hashes([stored_hash_count(size)])


def test_tile_reads_are_few_and_kept() -> None:
    size = 70_000
    store = build(leaves(size))
    published: dict[Tile, bytes] = {}
    _tiles_of(store, 0, size, published)
    reader = TileHashReader(size, tree_hash(size, store, SHA256), published.__getitem__, SHA256)
    prove_inclusion(size, 5000, reader, SHA256)
    # The three partial tiles the root is made of, tile 1/000 and the leaf's own 0/019.
    assert reader.tiles_read == 5
    prove_inclusion(size, 5001, reader, SHA256)
    assert reader.tiles_read == 5


# --------------------------------------------------------------------------------------
# Signed notes (vectors of golang.org/x/mod sumdb/note) and checkpoints
# --------------------------------------------------------------------------------------

PETER_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
NOTE_TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
PETER_LINE = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgK"
    "vqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIGNATURE = base64.b64decode(
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ="
)


def test_ed25519_note_signatures_match_golang_sumdb_note() -> None:
    peter = NoteSigner("PeterNeumann", "intl", PETER_SEED)
    assert peter.verifier().verifier_key() == PETER_VKEY
    assert peter.verifier().key_id == 0xC74F20A3
    assert peter.signature_line(NOTE_TEXT) == PETER_LINE
    assert parse_verifier_key(PETER_VKEY) == peter.verifier()
    enoch = parse_verifier_key(ENOCH_VKEY)
    assert ENOCH_SIGNATURE[:4] == (0xAF0CFE78).to_bytes(4, "big") == enoch.key_id.to_bytes(4, "big")
    assert enoch.verify(NOTE_TEXT, ENOCH_SIGNATURE[4:])
    assert not enoch.verify(NOTE_TEXT + b"!", ENOCH_SIGNATURE[4:])
    # key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4]
    digest = hashlib.sha256(b"EnochRoot\n\x01" + enoch.public).digest()
    assert note_key_id("EnochRoot", "intl", enoch.public) == int.from_bytes(digest[:4], "big")


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong key ID
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",  # length
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # algorithm
        "PeterNeumann+c74f20a3",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
    ],
)
def test_bad_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(TerminalError):
        parse_verifier_key(vkey)


@pytest.fixture(scope="module")
def intl_log() -> NoteSigner:
    return NoteSigner("admin.pehub.example/audit", "intl", bytes(range(32)))


@pytest.fixture(scope="module")
def gm_log() -> NoteSigner:
    return NoteSigner("admin.pehub.example/audit-gm", "gm", (7).to_bytes(32, "big"))


@pytest.fixture(scope="module")
def witness() -> NoteSigner:
    # The province as a witness, with a gm key.
    return NoteSigner("province.example/witness", "gm", (12345).to_bytes(32, "big"))


ROOT = SHA256.leaf_hash(b"root of the day")
ORIGIN = "admin.pehub.example/audit"


def test_checkpoint_note_format(intl_log: NoteSigner) -> None:
    note = sign_checkpoint(ORIGIN, 20852163, ROOT, intl_log)
    body, signature = note.split("\n\n")
    assert body + "\n" == f"{ORIGIN}\n20852163\n{base64.b64encode(ROOT).decode()}\n"
    assert signature.startswith(f"\u2014 {intl_log.name} ") and signature.endswith("=\n")
    raw = base64.b64decode(signature.split(" ")[2])
    assert raw[:4] == intl_log.verifier().key_id.to_bytes(4, "big") and len(raw) == 4 + 64
    checkpoint = open_checkpoint(note, [intl_log.verifier()])
    assert (checkpoint.origin, checkpoint.size, checkpoint.root_hash) == (ORIGIN, 20852163, ROOT)
    assert checkpoint.signed_by == (intl_log.name,) and checkpoint.extensions == ()
    assert checkpoint.body == body + "\n" and checkpoint.note == note
    assert open_checkpoint(note.encode(), [intl_log.verifier()]) == checkpoint


@pytest.mark.parametrize("log", ["intl_log", "gm_log"])
def test_checkpoints_sign_and_open_in_both_suites(log: str, request: pytest.FixtureRequest) -> None:
    signer: NoteSigner = request.getfixturevalue(log)
    verifier = signer.verifier()
    note = sign_checkpoint(ORIGIN, 7, ROOT, signer, extensions=["day 2026-12-06", "批次 3"])
    checkpoint = open_checkpoint(note, [verifier])
    assert checkpoint.extensions == ("day 2026-12-06", "批次 3") and checkpoint.size == 7
    assert parse_verifier_key(verifier.verifier_key()) == verifier
    tampered = {
        "size": note.replace("\n7\n", "\n8\n", 1),
        "root": note.replace(base64.b64encode(ROOT).decode(), base64.b64encode(SOME_HASH).decode()),
        "origin": note.replace(ORIGIN, ORIGIN + "2", 1),
        "extension": note.replace("批次 3", "批次 4"),
    }
    for what, text in tampered.items():
        with pytest.raises(CheckpointRefused) as refused:
            open_checkpoint(text, [verifier])
        assert refused.value.code == BAD_SIGNATURE, what
    line = note.split("\n\n")[1]
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[10] ^= 1
    forged = note.replace(line.split(" ")[2].rstrip("\n"), base64.b64encode(bytes(raw)).decode())
    with pytest.raises(CheckpointRefused) as refused:
        open_checkpoint(forged, [verifier])
    assert refused.value.code == BAD_SIGNATURE


def test_gm_key_ids_use_their_own_signature_type(gm_log: NoteSigner) -> None:
    verifier = gm_log.verifier()
    kind = b"\xff" + b"power-exchange-hub/sm2-sm3"
    digest = hashlib.sha256(gm_log.name.encode() + b"\n" + kind + verifier.public).digest()
    assert verifier.key_id == int.from_bytes(digest[:4], "big")
    assert base64.b64decode(verifier.verifier_key().split("+", 2)[2]) == kind + verifier.public
    # The same name and raw key bytes read as Ed25519 would be another key entirely.
    assert note_key_id(gm_log.name, "intl", verifier.public[:32]) != verifier.key_id


def test_unknown_keys_are_ignored_but_one_known_key_must_sign(
    intl_log: NoteSigner, gm_log: NoteSigner
) -> None:
    note = sign_checkpoint(ORIGIN, 3, ROOT, [gm_log, intl_log])
    assert open_checkpoint(note, [intl_log.verifier()]).signed_by == (intl_log.name,)
    with pytest.raises(CheckpointRefused) as refused:
        open_checkpoint(note, [])
    assert refused.value.code == UNKNOWN_KEY
    # The same name with another key (so another key ID) is unknown, not a bad signature.
    impostor = NoteSigner(intl_log.name, "intl", bytes(32))
    with pytest.raises(CheckpointRefused) as refused:
        open_checkpoint(sign_checkpoint(ORIGIN, 3, ROOT, impostor), [intl_log.verifier()])
    assert refused.value.code == UNKNOWN_KEY


def test_a_required_key_must_have_signed(intl_log: NoteSigner, witness: NoteSigner) -> None:
    note = sign_checkpoint(ORIGIN, 3, ROOT, intl_log)
    verifiers = [intl_log.verifier(), witness.verifier()]
    assert open_checkpoint(note, verifiers, require=[intl_log.name]).signed_by == (intl_log.name,)
    with pytest.raises(CheckpointRefused) as refused:
        open_checkpoint(note, verifiers, require=[intl_log.name, witness.name])
    assert refused.value.code == MISSING_SIGNATURE


def test_a_witness_cosigns(intl_log: NoteSigner, witness: NoteSigner) -> None:
    log_only = open_checkpoint(sign_checkpoint(ORIGIN, 9, ROOT, intl_log), [intl_log.verifier()])
    cosigned = cosign_checkpoint(log_only, witness)
    assert cosigned.startswith(log_only.note) and cosigned.count("\u2014 ") == 2
    both = open_checkpoint(cosigned, [intl_log.verifier(), witness.verifier()])
    assert both.signed_by == (intl_log.name, witness.name)
    assert both.root_hash == log_only.root_hash and both.size == 9
    assert open_checkpoint(cosigned, [witness.verifier()]).signed_by == (witness.name,)
    # Cosigning again replaces the witness's line rather than adding a second one.
    again = cosign_checkpoint(both, witness)
    assert again.count("\u2014 ") == 2
    # A cosignature that does not verify refuses the whole note.
    line = cosigned.splitlines()[-1]
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[-1] ^= 1
    bad = cosigned.replace(line, " ".join([*line.split(" ")[:2], base64.b64encode(raw).decode()]))
    with pytest.raises(CheckpointRefused) as refused:
        open_checkpoint(bad, [intl_log.verifier(), witness.verifier()])
    assert refused.value.code == BAD_SIGNATURE
    assert open_checkpoint(bad, [intl_log.verifier()]).signed_by == (intl_log.name,)


def _signed(body: str, signer: NoteSigner) -> str:
    return body + "\n" + signer.signature_line(body.encode())


@pytest.mark.parametrize(
    "body",
    [
        f"{ORIGIN}\n007\n{base64.b64encode(ROOT).decode()}\n",  # leading zeros
        f"{ORIGIN}\n-7\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n7 \n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n{1 << 63}\n{base64.b64encode(ROOT).decode()}\n",
        f"{ORIGIN}\n7\n{base64.b64encode(ROOT[:31]).decode()}\n",  # a short root
        f"{ORIGIN}\n7\n{base64.b64encode(ROOT).decode().rstrip('=')}\n",  # unpadded
        f"{ORIGIN}\n7\n{ROOT.hex()}\n",
        f"{ORIGIN}\n7\n",
        f"\n7\n{base64.b64encode(ROOT).decode()}\n",  # no origin
        f"{ORIGIN}\n7\n{base64.b64encode(ROOT).decode()}\nx\n\nafter a blank\n",
    ],
)
def test_signed_but_malformed_checkpoints_are_refused(body: str, intl_log: NoteSigner) -> None:
    with pytest.raises(CheckpointRefused) as refused:
        open_checkpoint(_signed(body, intl_log), [intl_log.verifier()])
    assert refused.value.code == BAD_FORMAT


def test_malformed_notes_are_refused(intl_log: NoteSigner) -> None:
    note = sign_checkpoint(ORIGIN, 7, ROOT, intl_log)
    body, line = note.split("\n\n")
    encoded = line.split(" ")[2].rstrip("\n")
    malformed: list[str | bytes] = [
        body + "\n",  # no signatures
        body + "\n\n",
        note[:-1],  # no final newline
        body + "\n\n" + line.replace("\u2014", "-"),
        body + "\n\n" + line.replace(f" {intl_log.name} ", f" {intl_log.name}+x "),
        body + "\n\n" + line.replace(encoded, encoded[:-4] + "!!!="),
        body + "\n\n" + line.replace(encoded, "AAAA"),  # too short for a key ID and signature
        note + "an unexpected line\n",
        "\x01" + note,
        note.replace(ORIGIN, ORIGIN + "\t"),
        note.encode().replace(b"audit", b"aud\xffit"),
        note + line * 100,  # too many signatures
        body + "\n\n" + line + " " * (64 * 1024),
    ]
    for text in malformed:
        with pytest.raises(CheckpointRefused) as refused:
            open_checkpoint(text, [intl_log.verifier()])
        assert refused.value.code == BAD_FORMAT, repr(text)[:80]


def test_signing_refuses_what_could_not_be_opened(intl_log: NoteSigner) -> None:
    for origin, size, root, extensions in [
        ("", 1, ROOT, []),
        ("a\nb", 1, ROOT, []),
        (ORIGIN, -1, ROOT, []),
        (ORIGIN, 1, ROOT[:16], []),
        (ORIGIN, 1, ROOT, [""]),
        (ORIGIN, 1, ROOT, ["two\nlines"]),
    ]:
        with pytest.raises(TerminalError):
            sign_checkpoint(origin, size, root, intl_log, extensions)
    with pytest.raises(TerminalError):
        sign_checkpoint(ORIGIN, 1, ROOT, [])
    with pytest.raises(TerminalError, match="signs a checkpoint once"):
        sign_checkpoint(ORIGIN, 1, ROOT, [intl_log, intl_log])
    for name in ("", "a b", "a+b", "a\u3000b"):
        with pytest.raises(TerminalError):
            NoteSigner(name, "intl", bytes(32))
    with pytest.raises(TerminalError):
        NoteSigner("name", "rot13", bytes(32))
    assert bytes(range(32)).hex() not in repr(intl_log)
    assert repr(bytes(range(32))) not in repr(intl_log)


def test_two_verifiers_for_one_key_id_are_a_configuration_error(intl_log: NoteSigner) -> None:
    note = sign_checkpoint(ORIGIN, 1, ROOT, intl_log)
    real = intl_log.verifier()
    assert open_checkpoint(note, [real, real]).signed_by == (real.name,)  # a repeat is harmless
    # Two keys named "n" whose key IDs collide (found by a birthday search over 32-byte keys).
    first = NoteVerifier("n", "intl", (10011).to_bytes(32, "big"))
    second = NoteVerifier("n", "intl", (34185).to_bytes(32, "big"))
    assert first.key_id == second.key_id == 0xD55D21B8
    with pytest.raises(TerminalError, match="share the name and key ID"):
        open_checkpoint(note, [real, first, second])


def test_zone_signing_keys_sign_checkpoints(tmp_path: Path) -> None:
    for suite in ("intl", "gm"):
        generate_zone_key(tmp_path / suite, "admin", suite)
        key = load_signing_key(tmp_path / suite, "admin")
        signer = NoteSigner.from_signing_key(ORIGIN, key)
        assert signer.suite == suite
        checkpoint = open_checkpoint(sign_checkpoint(ORIGIN, 1, ROOT, signer), [signer.verifier()])
        assert checkpoint.signed_by == (ORIGIN,)


# --------------------------------------------------------------------------------------
# Consecutive checkpoints
# --------------------------------------------------------------------------------------


def _checkpoint(signer: NoteSigner, size: int, root: bytes, origin: str = ORIGIN) -> Checkpoint:
    return open_checkpoint(sign_checkpoint(origin, size, root, signer), [signer.verifier()])


@pytest.mark.parametrize("hasher", [SHA256, SM3], ids=["sha256", "sm3"])
def test_verify_extension(hasher: TreeHasher, intl_log: NoteSigner) -> None:
    hashes = leaves(1000, hasher)
    store = build(hashes, hasher)
    day1 = _checkpoint(intl_log, 300, tree_hash(300, store, hasher))
    day2 = _checkpoint(intl_log, 1000, tree_hash(1000, store, hasher))
    proof = prove_consistency(300, 1000, store, hasher)
    assert verify_extension(day1, day2, proof, hasher=hasher) == Extended(300, 1000)
    assert verify_extension(day2, day2, [], hasher=hasher) == Extended(1000, 1000)
    empty = _checkpoint(intl_log, 0, hasher.empty_root())
    assert verify_extension(empty, day1, [], hasher=hasher) == Extended(0, 300)

    def refused(old: Checkpoint, new: Checkpoint, p: Sequence[bytes]) -> str:
        verdict = verify_extension(old, new, p, hasher=hasher)
        assert isinstance(verdict, ExtensionRefused)
        return verdict.code

    assert refused(day2, day1, proof) == ROLLBACK
    assert refused(day1, _checkpoint(intl_log, 300, SOME_HASH), []) == FORK
    # Rewrite leaf 17 and grow: the honest proof and the forger's own both fail.
    forked = list(hashes)
    forked[17] = hasher.leaf_hash(b"a rewritten event")
    forked_store = build(forked, hasher)
    rewritten = _checkpoint(intl_log, 1000, tree_hash(1000, forked_store, hasher))
    assert refused(day1, rewritten, proof) == FORK
    assert refused(day1, rewritten, prove_consistency(300, 1000, forked_store, hasher)) == FORK
    assert refused(day1, day2, proof[:-1]) == BAD_PROOF
    assert refused(day1, day2, [*proof, proof[0]]) == BAD_PROOF
    assert refused(day1, day2, [proof[0][:31], *proof[1:]]) == BAD_PROOF
    assert refused(day2, day2, [SOME_HASH]) == BAD_PROOF
    assert refused(day1, _checkpoint(intl_log, 1000, day2.root_hash, ORIGIN + "/other"), proof) == (
        ORIGIN_MISMATCH
    )
    assert refused(_checkpoint(intl_log, 0, SOME_HASH), day1, []) == FORK
    verdict = verify_extension(day1, rewritten, proof, hasher=hasher)
    assert isinstance(verdict, ExtensionRefused) and verdict.security
    bad_proof = verify_extension(day1, day2, proof[:-1], hasher=hasher)
    assert isinstance(bad_proof, ExtensionRefused) and not bad_proof.security


@settings(max_examples=40, deadline=None)
@given(start=st.integers(min_value=0, max_value=70), count=st.integers(min_value=0, max_value=70),
       suite=st.sampled_from(["intl", "gm"]))
def test_extend_stores_what_appending_one_by_one_stores(start: int, count: int, suite: str) -> None:
    """The batch path (``Frontier.extend``, ``leaf_hashes``) is the one-leaf path, hash for hash."""
    hasher = tree_hasher(suite)
    data = [f"entry {i}".encode() for i in range(start + count)]
    assert hasher.leaf_hashes(data) == [hasher.leaf_hash(d) for d in data]
    hashes = hasher.leaf_hashes(data)
    one, batch = Frontier(0, [], hasher), Frontier(0, [], hasher)
    for leaf in hashes[:start]:
        one.append(leaf)
        batch.append(leaf)
    expected = [h for leaf in hashes[start:] for h in one.append(leaf)]
    assert batch.extend(hashes[start:]) == expected
    assert (batch.size, batch.root()) == (one.size, one.root()) == (start + count, merkle_tree_hash(hashes, hasher))


def test_extend_refuses_a_leaf_that_is_no_hash() -> None:
    frontier = Frontier(0, [], SHA256)
    with pytest.raises(ValueError, match="32 bytes"):
        frontier.extend([leaves(1)[0], b"short"])
    assert frontier.size == 1
