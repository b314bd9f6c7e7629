"""The national suite against the published standard vectors, and its suite contract."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ferry.suites import SUITES, GmSuite, Sm2, Sm2Curve, sm2_kdf, sm3

# The example curve of GB/T 32918 (Fp-256), used by the standard's worked examples.
EXAMPLE_CURVE = Sm2Curve(
    p=0x8542D69E4C044F18E8B92435BF6FF7DE457283915C45517D722EDB8B08F1DFC3,
    a=0x787968B4FA32C3FD2417842E73BBFEFF2F3C848B6831D7E0EC65228B3937E498,
    b=0x63E4C6D3B23B0C849CF84241484BFE48F61D59A5B16BA06E6E12D1DA27C5249A,
    gx=0x421DEBD61B62EAB6746434EBC3CC315E32220B3BADD50BDC4C4E6C147FEDD43D,
    gy=0x0680512BCBB42C07D47349D2153B70C4E5D7FDFCBFA36EA1A85841B9E46E09A2,
    n=0x8542D69E4C044F18E8B92435BF6FF7DD297720630485628D5AE74EE7C32E79B7,
)


def test_sm3_standard_vectors() -> None:
    # GB/T 32905-2016 Appendix A, examples 1 and 2.
    assert sm3(b"abc").hex() == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )
    assert sm3(b"abcd" * 16).hex() == (
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    )


def test_sm4_standard_vector() -> None:
    # GB/T 32907-2016 Appendix A, example 1: key = plaintext.
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    assert encryptor.update(key).hex() == "681edf34d206965e86b3e94f536e4246"


def test_sm2_signature_example_with_its_fixed_k() -> None:
    # GB/T 32918.2 example (draft-shen-sm2-ecdsa-02 §A.2): user ALICE123@YAHOO.COM.
    sm2 = Sm2(EXAMPLE_CURVE)
    d = 0x128B2FA8BD433C6C068C8D803DFF79792A519A55171B1B650C23661D15897263
    public = sm2.public_point(d)
    assert public == (
        0x0AE4C7798AA0F119471BEE11825BE46202BB79E2A5844495E97C04FF4DF2548A,
        0x7C0240F88F1CD4E16352A73C17B7F16F07353E53A176D684A9FE0C6BB798E857,
    )
    z = sm2.z_a(public, b"ALICE123@YAHOO.COM")
    assert z.hex() == "f4a38489e32b45b6f876e3ac2168ca392362dc8f23459c1d1146fc3dbfb7bc9a"
    e = sm3(z + b"message digest")
    k = 0x6CB28D99385C175C94F94E934817663FC176D925DD72B727260DBAAE1FB2F96F
    assert sm2.sign_digest(d, e, k) == (
        0x40F1EC59F793D9F49E09DCEF49130D4194F79FB1EED2CAA55BACDB49C4E755D1,
        0x6FC6DAC32C5D5CF10C77DFB20F7C2EB667A457872FB09EC56327A67EC7DEEBE7,
    )
    r, s = sm2.sign_digest(d, e, k) or (0, 0)
    assert sm2.verify_digest(public, e, r, s)
    assert not sm2.verify_digest(public, sm3(z + b"message digesT"), r, s)
    assert not sm2.verify_digest(public, e, r, 0)


def test_sm2_encryption_example_with_its_fixed_k() -> None:
    # GB/T 32918.4 example on the example curve: "encryption standard", C1 || C3 || C2.
    sm2 = Sm2(EXAMPLE_CURVE)
    d = 0x1649AB77A00637BD5E2EFE283FBF353534AA7F7CB89463F208DDBC2920BB0DA0
    k = 0x4C62EEFD6ECFC2B95B92FD6C3D9575148AFA17425546D49018E5388D49DD7B4F
    sealed = sm2.encrypt_with_k(sm2.public_point(d), b"encryption standard", k)
    assert sealed.hex() == (
        "04245c26fb68b1ddddb12c4b6bf9f2b6d5fe60a383b0d18d1c4144abf17f6252e7"
        "76cb9264c2a7e88e52b19903fdc47378f605e36811f5c07423a24b84400f01b8"
        "9c3d7360c30156fab7c80a0276712da9d8094a634b766d3a285e07480653426d"
        "650053a89b41c418b0c3aad00d886c00286467"
    )
    # The receiver's side of the same agreement: d·C1 gives the same (x2, y2), so the same KDF.
    c1 = (int.from_bytes(sealed[1:33], "big"), int.from_bytes(sealed[33:65], "big"))
    x2, y2 = sm2.multiply(d, c1)
    t = sm2_kdf(x2.to_bytes(32, "big") + y2.to_bytes(32, "big"), 19)
    assert bytes(a ^ b for a, b in zip(sealed[97:], t, strict=True)) == b"encryption standard"


@pytest.fixture
def gm() -> GmSuite:
    suite = SUITES["gm"]
    assert isinstance(suite, GmSuite)
    return suite


def test_gm_signatures_are_deterministic_and_verify(gm: GmSuite) -> None:
    private = gm.generate_signing_key()
    public = gm.public_key(private)
    signature = gm.sign(private, b"manifest")
    assert len(public) == 64 and len(signature) == 64
    assert gm.sign(private, b"manifest") == signature
    assert gm.sign(private, b"manifest!") != signature
    assert gm.verify(public, signature, b"manifest")
    assert not gm.verify(public, signature, b"manifest!")
    other = gm.public_key(gm.generate_signing_key())
    assert not gm.verify(other, signature, b"manifest")


@pytest.mark.parametrize(
    ("public", "signature"),
    [(b"", b""), (b"\x00" * 64, b"\x01" * 64), (b"\xff" * 64, b"\xff" * 64), (b"\x00" * 63, b"")],
)
def test_gm_verify_returns_false_on_malformed_input(
    gm: GmSuite, public: bytes, signature: bytes
) -> None:
    assert gm.verify(public, signature, b"data") is False


def test_gm_key_agreement_and_aead(gm: GmSuite) -> None:
    a, b = gm.generate_agreement_key(), gm.generate_agreement_key()
    shared = gm.agree(a, gm.agreement_public_key(b))
    assert shared == gm.agree(b, gm.agreement_public_key(a)) and len(shared) == 32
    key = gm.kdf(shared, b"item", 16)
    sealed = gm.seal(key, b"\x00" * 12, b"plain text", b"aad")
    assert gm.open(key, b"\x00" * 12, sealed, b"aad") == b"plain text"
    from ferry.suites import DecryptionFailed

    with pytest.raises(DecryptionFailed):
        gm.open(key, b"\x00" * 12, sealed, b"other aad")
    with pytest.raises(DecryptionFailed):
        gm.agree(a, b"\x00" * 64)  # not a point on the curve


@pytest.mark.parametrize("d", [11, 225, 307])
def test_keys_whose_public_x_begins_with_byte_04_sign_and_verify(d: int) -> None:
    """gmssl strips a "04" point prefix with lstrip, which ate these keys' leading digits:
    about one key in 256 could never verify (public x = 04b3.., 04de.., 0404..)."""
    suite = GmSuite()
    private = d.to_bytes(32, "big")
    public = suite.public_key(private)
    assert public[0] == 0x04
    signature = suite.sign(private, b"bundle manifest")
    assert suite.verify(public, signature, b"bundle manifest")
    assert not suite.verify(public, signature, b"bundle manifesT")
