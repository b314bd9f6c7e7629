"""The last gate before anything leaves the administration network: a fail-closed scanner
for personal data (resident IDs, unmasked mobile numbers, bank card numbers) in a record
about to be published, and the text normalisation it and the masking share.

Pure: takes a record, returns findings as data (code, JSON pointer, masked excerpt). The
publication policy (``rules.publication``) holds a change with findings for review.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, Literal

from rules.identifiers import is_valid_resident_id, is_valid_uscc, resident_id_birth_date

FindingCode = Literal["RESIDENT_ID", "MOBILE", "BANK_CARD"]

_MOBILE: Final = re.compile(r"1[3-9][0-9]{9}")
_MOBILE_PREFIXES: Final = ("", "0", "86", "0086")
# Separators people put between digits; full-width forms are already folded by NFKC.
_SEPARATOR_PUNCTUATION: Final = frozenset("._·•・/,、")
_MAX_SEPARATORS: Final = 3
_DIGIT_RUN: Final = re.compile(
    rf"[0-9]+(?: {{1,{_MAX_SEPARATORS}}}[0-9]+)*(?: {{0,{_MAX_SEPARATORS}}}X)?"
)
_LONGEST_NUMBER: Final = 19
_FEWEST_DIGITS: Final = 11
_GROUP: Final = re.compile(r"[0-9]+|X")
# CJK unified ideographs (with extension A): never a digit, separator or X after NFKC.
_IDEOGRAPHS: Final = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
_OTHER_SCRIPT_DIGIT: Final = re.compile(r"[^\D0-9]")  # a decimal digit that is not ASCII
_HAS_DIGIT: Final = re.compile(r"[0-9]")


@dataclass(frozen=True)
class Finding:
    """Personal data found in a record about to be published: what, where (JSON pointer)
    and a masked excerpt (never the number itself)."""

    code: FindingCode
    path: str
    excerpt: str


def scan_for_personal_data(record: Mapping[str, Any]) -> list[Finding]:
    """Every resident ID, unmasked mobile number and bank card number in ``record``.

    Fails closed: keys are scanned too, values of unknown types are scanned as their
    text, full-width digits are folded and separators between digits are ignored.
    Historic 15-digit IDs are not flagged (too many false positives).
    """
    # Fast path. Texts already found clean are not read again (a case's numbers, codes and
    # names recur in each of its changes, keys in every record). The rest are made visible
    # each on its own (markup removed, NFKC; markup or an entity must never span two
    # texts); those the pre-filter cannot clear are joined by NUL. Runs of digits never
    # cross a character that is neither digit nor separator, and no normalisation composes
    # across NUL, so the joined texts hold a number exactly when one of them does; only
    # then is the record read text by text, with paths.
    values: list[str] = []
    _collect_values(record, values)
    recent, older = _CLEAN_TEXTS.recent, _CLEAN_TEXTS.older
    unread = [text for text in values if text not in recent and text not in older]
    if not unread:
        return []
    visible = list(map(_visible, unread))
    held = list(map(_may_hold_number, visible))
    suspect = [text for text, maybe in zip(visible, held) if maybe]
    if not suspect or not any(_numbers_in_suspect("\x00".join(suspect))):
        # Not remembered: ASCII texts with digits that the pre-filter clears (event ids,
        # times), new in nearly every change; they would only push out the case numbers and
        # names that recur, which cost far more to read again.
        _CLEAN_TEXTS.add([
            text for text, maybe in zip(unread, held)
            if maybe or not (text.isascii() and _HAS_DIGIT.search(text))
        ])
        return []
    texts = _texts(record, "")
    findings: list[Finding] = []
    for path, text in texts:
        for code, number in _personal_numbers(text):
            finding = Finding(code, path, _mask_number(code, number))
            if finding not in findings:
                findings.append(finding)
    return findings


def _texts(value: Any, path: str) -> list[tuple[str, str]]:
    """Every piece of text in ``value`` with its JSON pointer."""
    found: list[tuple[str, str]] = []
    _collect_texts(value, path, found)
    return found


def _collect_texts(value: Any, path: str, found: list[tuple[str, str]]) -> None:
    # Appends instead of nested generators: a record's dozens of leaves cost a call each,
    # not a generator frame per level per leaf.
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        found.append((path, value))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            child = f"{path}/{_pointer_segment(str(key))}"
            found.append((child, str(key)))
            if isinstance(item, str):
                found.append((child, item))
            else:
                _collect_texts(item, child, found)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _collect_texts(item, f"{path}/{index}", found)
    else:
        found.append((path, str(value)))


def _collect_values(value: Any, found: list[str]) -> None:
    """``_collect_texts`` without the paths, for the fast path: the same texts, in the same
    order.

    The exact built-in types of a public record (dicts, lists, strings, ints, None) are
    taken first by ``type(...) is``: no call per leaf, no ``Mapping`` instance check (an
    ABC's, the slowest); anything else goes the general way below."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            found.append(key if type(key) is str else str(key))
            item_kind = type(item)
            if item_kind is str:
                found.append(item)
            elif item_kind is int:
                found.append(str(item))
            elif item is not None and item_kind is not bool:
                _collect_values(item, found)
        return
    if kind is list:
        for item in value:
            item_kind = type(item)
            if item_kind is str:
                found.append(item)
            elif item_kind is int:
                found.append(str(item))
            elif item is not None and item_kind is not bool:
                _collect_values(item, found)
        return
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        found.append(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            found.append(str(key))
            if isinstance(item, str):
                found.append(item)
            else:
                _collect_values(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect_values(item, found)
    else:
        found.append(str(value))


class _CleanTexts:
    """Texts the scanner has read and found clean, bounded: two generations of at most
    ``size`` texts each; when the newer fills up, the older is dropped."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.recent: set[str] = set()
        self.older: set[str] = set()

    def add(self, texts: list[str]) -> None:
        self.recent.update(texts)
        if len(self.recent) >= self.size:
            self.older, self.recent = self.recent, set()


# What recurs in every record (keys, power codes and names, steps, opinions) stays; a
# case's own texts stay for the next few thousand records. At most some 15 MB.
_CLEAN_TEXTS: Final = _CleanTexts(65_536)


@lru_cache(maxsize=4096)
def _pointer_segment(key: str) -> str:
    # A key that holds personal data must not reappear in the finding's path.
    if any(_personal_numbers(key)):
        key = "".join("*" if c.isdecimal() else c for c in normalise(key))
    return key.replace("~", "~0").replace("/", "~1")


_MARKUP_TAG: Final = re.compile(r"<[^<>]{0,200}>")


def _without_markup(text: str) -> str:
    """``text`` as a browser would show it: character references decoded (also when
    escaped more than once) and tags removed, so markup between digits hides nothing."""
    for _ in range(3):
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = decoded
    return _MARKUP_TAG.sub("", text)


def _visible(text: str) -> str:
    """``text`` as ``_personal_numbers`` reads it: markup removed, NFKC, ASCII digits."""
    if text.isascii() and "<" not in text and "&" not in text:
        return text  # nothing to decode, fold or remove
    return _visible_cached(text) if len(text) <= 256 else normalise(_without_markup(text))


@lru_cache(maxsize=65_536)
def _visible_cached(text: str) -> str:
    # Item names, steps and opinions recur in every record; their folding is paid once.
    return normalise(_without_markup(text))


def _personal_numbers(text: str) -> Iterator[tuple[FindingCode, str]]:
    return _numbers_in(_visible(text))


def _numbers_in(normalised: str) -> Iterator[tuple[FindingCode, str]]:
    """The personal numbers in visible, normalised text (see ``_visible``)."""
    if _may_hold_number(normalised):
        yield from _numbers_in_suspect(normalised)


def _may_hold_number(normalised: str) -> bool:
    """False only when ``normalised`` cannot hold a personal number: it has no 11 digits
    in a row with nothing between them that could join them into one run (see
    ``_BETWEEN_DIGITS``). Cheaper than the skeleton, and true for every text with one."""
    return _MAYBE_NUMBER.search(normalised) is not None


def _numbers_in_suspect(normalised: str) -> Iterator[tuple[FindingCode, str]]:
    """``_numbers_in`` without the pre-filter, for text that passed it."""
    for run in _DIGIT_RUN.finditer(_run_skeleton(normalised)):
        if run.end() - run.start() < _FEWEST_DIGITS:
            continue
        groups = _GROUP.findall(run.group())
        compact = "".join(groups)
        if len(compact) < _FEWEST_DIGITS:
            continue
        resident_ids: list[range] = []
        for start in range(len(compact) - 17):
            if _is_resident_id(compact[start : start + 18]):
                resident_ids.append(range(start, start + 18))
                yield "RESIDENT_ID", compact[start : start + 18]
        # Mobiles and cards must start and end where the writer put a break (or the text
        # does); windows inside a longer number would flag most long numbers.
        for start, end in _aligned_spans([g for g in groups if g != "X"]):
            candidate = compact[start:end]
            mobile = as_mobile(candidate)
            if mobile is not None:
                yield "MOBILE", mobile
            elif (
                16 <= len(candidate) <= 19
                and candidate[0] != "0"
                and _passes_luhn(candidate)
                # One ID in ten passes the Luhn check, and so do 17-digit bodies of IDs
                # ending in X: such a card is the ID already reported.
                and not any(start in span and end - 1 in span for span in resident_ids)
            ):
                yield "BANK_CARD", candidate


def _run_skeleton(normalised: str) -> str:
    """The skeleton (see ``_skeleton``) the scanner looks for runs of digits in: credit
    codes blanked first."""
    # Runs of ideographs are one "other" character to the skeleton: collapsed before the
    # per-character table, which is the slow part on Chinese text.
    return _IDEOGRAPHS.sub("#", _blank_credit_codes(normalised)).translate(_SKELETON)


def _is_resident_id(number: str) -> bool:
    # Birth years past 2099 are noise in long digit runs, not IDs.
    if number[6:8] not in ("19", "20"):  # born 1900-2099: a cheap test before the check digit
        return False
    born = resident_id_birth_date(number)
    return is_valid_resident_id(number) and born is not None and born.year < 2100


def _aligned_spans(groups: list[str]) -> Iterator[tuple[int, int]]:
    """Start and end of each run of consecutive digit groups, up to the longest number
    looked for."""
    starts = [0]
    for group in groups:
        starts.append(starts[-1] + len(group))
    for first in range(len(groups)):
        for last in range(first + 1, len(groups) + 1):
            if starts[last] - starts[first] > _LONGEST_NUMBER:
                break
            yield starts[first], starts[last]


def as_mobile(digits: str) -> str | None:
    for prefix in _MOBILE_PREFIXES:
        if digits.startswith(prefix) and _MOBILE.fullmatch(digits[len(prefix) :]):
            return digits[len(prefix) :]
    return None


def _passes_luhn(number: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _mask_number(code: FindingCode, number: str) -> str:
    """The excerpt of a finding: ``number`` (ASCII digits, already compact) masked as
    ``rules.publication`` masks IDs (first 6 and last 4 shown) and mobiles (``138****5678``);
    a card keeps its last 4 digits."""
    if code == "RESIDENT_ID":
        return number[:6] + "*" * (len(number) - 10) + number[-4:]
    if code == "MOBILE":
        return number[:3] + "****" + number[-4:]
    return "*" * (len(number) - 4) + number[-4:]


# A credit code stands alone or begins a national power code (its agency's credit code
# followed by the category letters), so letters may follow it but digits may not.
_CREDIT_CODE_TOKEN: Final = re.compile(r"(?<![0-9A-Z])[0-9A-Z]{18}(?![0-9])")


def _blank_credit_codes(normalised: str) -> str:
    """The normalised text with every valid unified social credit code blanked out: an
    organisation's credit code is public, and its digit runs would otherwise pass for
    card numbers. A token that is also a valid resident ID stays (fail closed)."""

    def blank(match: re.Match[str]) -> str:
        token = match.group()
        return " " if _is_public_credit_code(token) else token

    return _CREDIT_CODE_TOKEN.sub(blank, normalised)


@lru_cache(maxsize=65_536)
def _is_public_credit_code(token: str) -> bool:
    # Cached: the same few thousand agency codes recur in every record (power codes, case
    # numbers), and the check-character arithmetic is most of the scanner's time otherwise.
    return is_valid_uscc(token) and not _is_resident_id(token)


def normalise(text: str) -> str:
    """NFKC folding, and digits of any script as ASCII digits."""
    folded = (
        text if text.isascii() or unicodedata.is_normalized("NFKC", text)
        else unicodedata.normalize("NFKC", text)
    )
    if folded.isascii():
        return folded
    if not _OTHER_SCRIPT_DIGIT.search(folded):
        return folded
    return folded.translate(_ASCII_DIGITS)


def _is_separator(char: str) -> bool:
    return (
        char.isspace()
        or char in _SEPARATOR_PUNCTUATION
        or unicodedata.category(char) in ("Pd", "Cf", "Zs")
    )


class _DigitTable(dict[int, str]):
    """``str.translate`` table folding digits of any script to ASCII, filled in lazily."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        value = self[code] = (
            str(unicodedata.decimal(char)) if char.isdecimal() and not char.isascii() else char
        )
        return value


_ASCII_DIGITS: Final = _DigitTable()


def _skeleton_char(char: str) -> str:
    return (
        char if char.isascii() and char.isdigit()
        else "X" if char in "xX"
        else " " if _is_separator(char)
        else "#"
    )


class _SkeletonTable(dict[int, str]):
    """``str.translate`` table of ``_skeleton_char``, filled in as characters are seen."""

    def __missing__(self, code: int) -> str:
        value = self[code] = _skeleton_char(chr(code))
        return value


_SKELETON: Final = _SkeletonTable()

# Every number looked for has at least 11 digits (a mobile), all in one run of the
# skeleton. Between two digits of a run there are only separators, and credit codes
# (``_CREDIT_CODE_TOKEN``: digits and capitals) blanked to one separator, in the text; the
# X check character ends a run but is let through too. The ASCII ones are taken from
# ``_skeleton_char``; every non-ASCII character is let through except ideographs, which
# are never separators (Unicode's dash, format and space categories are too long to list,
# and a superset only sends more text to the skeleton).
_BETWEEN_DIGITS: Final = "[" + "".join(
    re.escape(char)
    for char in map(chr, range(128))
    if not char.isdigit() and (_skeleton_char(char) != "#" or "A" <= char <= "Z")
) + "\x80-\u33ff\u4dc0-\u4dff\ua000-\U0010ffff]"
# Possessive: the gap between digits never holds a digit, so giving characters back could
# not make a match. Tried only where a group of digits starts: a match that starts inside a
# group also starts at the group's first digit (the digits before it just take the first
# of its steps), so the other starts only cost time on texts such as date-times.
_MAYBE_NUMBER: Final = re.compile(
    rf"(?<![0-9])[0-9](?:{_BETWEEN_DIGITS}*+[0-9]){{{_FEWEST_DIGITS - 1}}}"
)


def _skeleton(text: str) -> str:
    """``text`` reduced to digits, ``X`` (ID check character), ``' '`` for a separator
    and ``'#'`` for anything else."""
    return normalise(text).translate(_SKELETON)


class _SeparatorTable(dict[int, str | None]):
    """``str.translate`` table deleting separators, filled in as characters are seen."""

    def __missing__(self, code: int) -> str | None:
        char = chr(code)
        value = self[code] = None if _is_separator(char) else char
        return value


_WITHOUT_SEPARATORS: Final = _SeparatorTable()


def compact(text: str) -> str:
    return normalise(text).translate(_WITHOUT_SEPARATORS)
