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
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferry.suites import sm3
from ferry.tlog import (
    STORAGE_MISMATCH,
    Appended,
    Frontier,
    MemoryHashStore,
    TlogError,
    TreeHasher,
    append_leaves,
    consistency_path,
    consistency_proof_size,
    inclusion_path,
    inclusion_proof_size,
    merkle_tree_hash,
    prove_consistency,
    prove_inclusion,
    split_stored_hash_index,
    stored_hash_count,
    stored_hash_index,
    tree_hash,
    tree_hasher,
    verify_consistency,
    verify_inclusion,
)

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
    wrong = data.draw(st.integers(min_value=index + 1, max_value=2 * size).filter(lambda s: s != size))
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


def test_proof_arguments_are_checked() -> None:
    store = build(leaves(5))
    with pytest.raises(ValueError):
        prove_inclusion(5, 5, store, SHA256)
    with pytest.raises(ValueError):
        prove_consistency(6, 5, store, SHA256)
    with pytest.raises(ValueError):
        inclusion_path(3, leaves(3), SHA256)
