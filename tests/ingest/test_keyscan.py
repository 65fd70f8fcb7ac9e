"""The C scanner of undeclared keys agrees with DuckDB's look (json_keys) wherever it answers, and says UNSURE
on whatever it does not understand; margay answers the same without it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from margay.ingest import keyscan
from margay.ingest.keyscan import KeyScanner, Verdict
from margay.ingest.parse import _UNKNOWN_KEYS
from margay.logtypes import REGISTRY
from margay.logtypes.base import own_keys
from margay.store.duckdb import connect

from .guard import every_prefix_at_a_guard_page

OWN = own_keys(REGISTRY["flows"])
SCANNER = KeyScanner(OWN)
CLEAN, UNDECLARED, UNSURE = Verdict.CLEAN, Verdict.UNDECLARED, Verdict.UNSURE


def test_the_scanner_is_built() -> None:
    # setup.py builds it on `pip install -e .`; the Makefile's rig step installs gcc and Python's headers.
    assert keyscan.NATIVE and SCANNER.native, "ingest/_keyscan.c was not built: pip install -e . (needs gcc)"
    assert keyscan._native_count is not None, "an older build of ingest/_keyscan.c: pip install -e ."


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([b"\n", b"a", b"\r", b"\n" * 17, b"x" * 15, b"\x8a", b"\x00"]), max_size=300),
       st.integers(0, 15))
def test_newlines_are_counted_as_bytes_count_does(parts: list[bytes], skip: int) -> None:
    body = b"".join(parts)[skip:]  # every alignment, and tails shorter than a 16-byte step
    assert keyscan.count_newlines(body) == body.count(b"\n")
    assert keyscan.count_newlines(memoryview(body)) == body.count(b"\n")


def test_newlines_of_long_bodies_are_counted_whole() -> None:
    # Past 255 steps of 16 bytes the byte counters are summed and begin again: none may wrap.
    for body in (b"\n" * 100_003, (b"a" * 1_499 + b"\n") * 9_335, b"\n" * (16 * 255 + 1) + b"x" * 33 + b"\n"):
        assert keyscan.count_newlines(body) == body.count(b"\n")


def _records(body: bytes) -> int:
    return len([line for line in body.split(b"\n") if line.strip()])  # group.py's numbering before count_records


@settings(max_examples=800, deadline=None)
@given(st.lists(st.sampled_from([b"\n", b" ", b"\t", b"\r", b"\x0b", b"\x0c", b"\x1c", b"\xa0", b"\x85", b"\x00",
                                 b"{}", b"x" * 20, b"\r\n", b" \n\t"]), max_size=200), st.integers(0, 7))
def test_records_are_the_lines_strip_keeps(parts: list[bytes], skip: int) -> None:
    # Python's bytes.strip() is the definition (ASCII whitespace: space, \t \n \v \f \r, not \x1c or \xa0).
    body = b"".join(parts)[skip:]
    assert keyscan.count_records(body) == _records(body)
    assert keyscan.count_records(memoryview(body)) == _records(body)
    assert keyscan._native_records is not None
    keyscan._native_records, native = None, keyscan._native_records
    try:  # the fallback of a build without the extension answers the same
        assert keyscan.count_records(body) == _records(body)
    finally:
        keyscan._native_records = native


def test_records_of_real_batches() -> None:
    line = json.dumps({"source_ip": "10.0.0.1", "host": "h" * 1500}).encode()
    for body in (b"", b"\n", line, line + b"\n", b"\n".join([line] * 5000), b"\r\n \n".join([line] * 7) + b"\n\n ",
                 b"\n\n" + line + b"\n\x0c\n" + line + b"\x0b"):
        assert keyscan.count_records(body) == _records(body)


_LINES = [
    (b'{"source_ip":"10.0.0.1","dest_port":80}', CLEAN),
    (b'{"source_ip":"10.0.0.1","dest_portx":80}', UNDECLARED),
    (b'{}', CLEAN),
    (b' \t{ \r} \t', CLEAN),
    (b'{ "source_ip" :\t"a" , "host"\r:\r1 }', CLEAN),
    (b'{"source_ip":"a\\"b,\\"nope\\":1","host":"\\\\"}', CLEAN),  # escaped quotes and a trailing backslash
    (b'{"source_ip":"\\\\\\"","zz":1}', UNDECLARED),
    (b'{"source_labels":{"zz":[1,"]}",{"q":"{"}]},"host":"h"}', CLEAN),  # nested keys are not top-level
    (b'{"policies":[[[[{}]]]],"zz":null}', UNDECLARED),
    (b'{"source_ip":"\xc3\xa9\xf0\x9f\x98\x80"}', CLEAN),
    (b'{"\xc3\xa9":1}', UNDECLARED),
    (b'{"":1}', UNDECLARED),
    (b'{"source_ip":1,"source_ip":2}', CLEAN),  # duplicates: the reader refuses them, json_keys lists both
    (b'{"bytes_in":-1.5e+3,"bytes_out":true,"host":false,"action":null,"proto":NaN}', CLEAN),
    (b'{"sourc\\u0065_ip":1}', UNSURE),  # json_keys decodes it: DuckDB decides
    (b'{"a\\"b":1}', UNSURE),
    (b'[1,2]', UNSURE),
    (b'"source_ip"', UNSURE),
    (b'{"source_ip":1,}', UNSURE),
    (b'{"source_ip":1 /* c */}', UNSURE),
    (b'{"source_ip":1}{"host":1}', UNSURE),
    (b'{"source_ip":1', UNSURE),
    (b'{"source_ip":"x', UNSURE),
    (b'{"source_ip":[1,\n2]}', UNSURE),
    (b'\xef\xbb\xbf{"source_ip":1}', UNSURE),
    (b'{"' + b"k" * 100_000 + b'":1}', UNDECLARED),
]


@pytest.mark.parametrize(("line", "verdict"), _LINES)
def test_lines(line: bytes, verdict: Verdict) -> None:
    assert SCANNER.scan(line) is verdict


def test_batches() -> None:
    ok, other = b'{"source_ip":"a","host":"b"}', b'{"host":"b","zz":1}'
    assert SCANNER.scan(b"") is CLEAN
    assert SCANNER.scan(b"\n\n \n") is CLEAN
    assert SCANNER.scan(b"\r\n".join([ok] * 5) + b"\r\n") is CLEAN
    assert SCANNER.scan(b"\n".join([ok] * 1000 + [other] + [ok])) is UNDECLARED
    assert SCANNER.scan(b"\n".join([ok, b"[]", other])) is UNSURE  # stops at what it does not understand
    assert SCANNER.scan(bytearray(ok)) is CLEAN and SCANNER.scan(memoryview(ok)) is CLEAN


def test_an_uninitialised_key_set_refuses_to_scan() -> None:
    from margay.ingest._keyscan import KeySet
    with pytest.raises(RuntimeError, match="not initialised"):
        KeySet.__new__(KeySet).scan(b"{}")
    with pytest.raises(TypeError):
        KeySet(("source_ip", 1))


def test_without_the_extension_every_look_is_unsure() -> None:
    plain = KeyScanner(OWN, native=False)
    assert not plain.native and plain.scan(b'{"source_ip":1}') is UNSURE


# -- fuzzing against DuckDB's look ---------------------------------------------------------------------

_DECLARED = list(OWN)
_NEAR = ["source_ip ", "Source_ip", "source_i", "source_ipp", "_extra", "sourceip", "source_ip\t", "cluster2"]
_ODD = ["", "é", "😀", "a b", "k:", '"', "\\", "{", "}", "[", "]", ",", ":", "\x7f", "source_ip\"", "/"]


def _escape_char(rng: random.Random, ch: str, rate: float) -> str:
    if ch == '"':
        return '\\"'
    if ch == "\\":
        return "\\\\"
    if ord(ch) < 0x20:
        return f"\\u{ord(ch):04x}"
    if ord(ch) < 0x10000 and not 0xD800 <= ord(ch) < 0xE000 and rng.random() < rate:
        return f"\\u{ord(ch):04x}"
    if ch == "/" and rng.random() < rate * 5:
        return "\\/"
    return ch


def _string(rng: random.Random, text: str, rate: float = 0.05) -> tuple[str, bool]:
    """A JSON string for `text`, some characters escaped at random; and whether it holds an escape."""
    out = "".join(_escape_char(rng, ch, rate) for ch in text)
    return '"' + out + '"', "\\" in out


def _ws(rng: random.Random) -> str:
    return "" if rng.random() < 0.7 else "".join(rng.choice(" \t\r") for _ in range(rng.randint(1, 3)))


def _text(rng: random.Random) -> str:
    pool = ['"', "\\", "{", "}", "[", "]", ",", ":", "a", "é", "😀", " ", "\t", "/", "*", "x" * 40, '\\"', "\\\\"]
    return "".join(rng.choice(pool) for _ in range(rng.randint(0, 12)))


def _value(rng: random.Random, depth: int) -> str:
    r = rng.random()
    if depth < 4 and r < 0.15:
        items = [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
        return "[" + _ws(rng) + ("," + _ws(rng)).join(items) + _ws(rng) + "]"
    if depth < 4 and r < 0.3:
        pairs = [_string(rng, rng.choice(_DECLARED + _NEAR + _ODD + [_text(rng)]))[0] + _ws(rng) + ":" + _ws(rng)
                 + _value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
        return "{" + _ws(rng) + ("," + _ws(rng)).join(pairs) + _ws(rng) + "}"
    if r < 0.65:
        return _string(rng, _text(rng))[0]
    return rng.choice(["0", "-1", "12345678901234", "1.5e-7", "-0.0", "true", "false", "null", "NaN", "1E+2"])


def _line(rng: random.Random) -> tuple[str, bool]:
    """A valid NDJSON line (mostly objects of declared keys), and whether a key of it is escaped."""
    if rng.random() < 0.03:
        return rng.choice(["[]", "[1,{\"zz\":1}]", "1", '"x"', "null", "true"]), True
    escaped_key = False
    pairs = []
    undeclared = rng.random() < 0.3
    for _ in range(rng.randint(0, 12)):
        if undeclared and rng.random() < 0.15:
            key = rng.choice(_NEAR + _ODD + [_text(rng), "k" * rng.choice([1, 300, 5000])])
        else:
            key = rng.choice(_DECLARED)
        text, esc = _string(rng, key, 0.05 if rng.random() < 0.02 else 0.0)
        escaped_key |= esc
        pairs.append(_ws(rng) + text + _ws(rng) + ":" + _ws(rng) + _value(rng, 1) + _ws(rng))
    return _ws(rng) + "{" + ",".join(pairs) + "}" + _ws(rng), escaped_key


def _truth_per_line(lines: list[str], tmp: Path) -> list[bool]:
    """Per line: whether DuckDB's json_keys finds a key outside the declared set."""
    path = tmp / "lines.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    con = connect()
    rows = con.execute("SELECT coalesce(len(list_filter(json_keys(json), lambda k: NOT list_contains(?::VARCHAR[], k))), 0) "
                       "FROM read_ndjson_objects(?, maximum_object_size=16777216)", [list(OWN), str(path)]).fetchall()
    assert len(rows) == len(lines)
    return [n > 0 for (n,) in rows]


def test_fuzz_agrees_with_duckdb(tmp_path: Path) -> None:
    rng = random.Random(20261206)
    made = [_line(rng) for _ in range(6000)]
    lines = [text for text, _ in made]
    truth = _truth_per_line(lines, tmp_path)
    unsure = 0
    for (text, escaped_key), found in zip(made, truth, strict=True):
        verdict = SCANNER.scan(text.encode())
        if verdict is UNSURE:
            unsure += 1
            assert escaped_key or not text.strip().startswith("{"), text  # only what it cannot read as is
            continue
        assert verdict is (UNDECLARED if found else CLEAN), text
    assert sum(truth) > 500 and unsure < len(lines) // 5, (sum(truth), unsure)
    # Whole batches, as the converter asks: DuckDB's own statement decides the truth.
    con = connect()
    answered = 0
    for i in range(300):
        chosen = rng.sample(lines, rng.randint(1, 40))
        sep = rng.choice(["\n", "\r\n", "\n\n"])
        body = (sep.join(chosen) + rng.choice(["", sep])).encode()
        path = tmp_path / f"b{i}.ndjson"
        path.write_bytes(body)
        found = con.execute(_UNKNOWN_KEYS, [str(path), list(OWN)]).fetchall()[0][0] > 0
        verdict = SCANNER.scan(body)
        if verdict is not UNSURE:
            answered += 1
            assert verdict is (UNDECLARED if found else CLEAN), body[:500]
    assert answered > 100


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.one_of(st.sampled_from(_DECLARED), st.text(max_size=12)),
                       st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False,
                                    allow_infinity=False) | st.text(max_size=20),
                                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                                  max_size=4),
                                    max_leaves=12),
                       max_size=10),
       st.booleans())
def test_any_object_as_python_writes_it(doc: dict, ascii_only: bool) -> None:
    line = json.dumps(doc, ensure_ascii=ascii_only).encode()
    verdict = SCANNER.scan(line)
    if any("\\" in json.dumps(k, ensure_ascii=ascii_only) for k in doc):
        assert verdict in (UNSURE, UNDECLARED if set(doc) - set(OWN) else CLEAN)
        return
    assert verdict is (UNDECLARED if set(doc) - set(OWN) else CLEAN), line


# -- hostile bodies: memory safety and error paths -------------------------------------------------------

def test_a_failed_init_leaves_no_half_built_set() -> None:
    # It used to keep the keys before the bad one and answer with them; now it refuses until initialised again.
    from margay.ingest._keyscan import KeySet
    ks = KeySet.__new__(KeySet)
    with pytest.raises(TypeError):
        ks.__init__(("source_ip", 1))
    with pytest.raises(RuntimeError, match="not initialised"):
        ks.scan(b'{"source_ip":1}')
    ks.__init__(("source_ip",))
    assert ks.scan(b'{"source_ip":1}') == CLEAN and ks.scan(b'{"host":1}') == UNDECLARED
    with pytest.raises(RuntimeError, match="already initialised"):
        ks.__init__(("host",))


@pytest.mark.parametrize("body", [b'{"source_ip":"x\\', b'{"source_ip":"\\', b'{"\\', b'{"source_ip":"\\u00',
                                  b'{"source_ip":{"a":"\\', b'{"source_ip":"\\"'])
def test_a_body_ending_in_an_escape_is_unsure(body: bytes) -> None:
    assert SCANNER.scan(body) is UNSURE


_SCAN = """
from margay.ingest.keyscan import KeyScanner
from margay.logtypes import REGISTRY
from margay.logtypes.base import own_keys
scanner = KeyScanner(own_keys(REGISTRY["flows"]))
def check(view):
    return int(scanner.scan(view) in (0, 1, 2))
"""


def test_no_read_past_the_end_of_the_body() -> None:
    flow = json.dumps({k: "v" * (i % 23) for i, k in enumerate(OWN)}, separators=(",", ":")).encode()
    bodies = [line for line, _ in _LINES if len(line) < 4000]
    bodies += [flow, flow + b"\n" + flow.replace(b'"host"', b'"hostx"'), b"\n\n\r\n", b"\x00" * 40,
               b'{"source_ip":"' + b"\\\\" * 40 + b'"}', b'{"source_labels":' + b"[" * 300 + b"]" * 300 + b"}",
               b'{"policies":{"a":"' + b"x" * 33 + b'\\"}"}}', b'{"source_ip":1' + b" " * 40 + b"}"]
    assert every_prefix_at_a_guard_page(_SCAN, bodies) == sum(len(b) + 1 for b in bodies)


def test_threads_share_one_key_set_while_the_gil_is_released() -> None:
    # The scan's per-call state (the predicted next keys) lives on the C stack, the KeySet is only read.
    from concurrent.futures import ThreadPoolExecutor
    clean = b"\n".join([b'{"source_ip":"a","host":"b","dest_port":1}', b'{"host":"b","source_ip":"a"}'] * 20000)
    other = clean + b'\n{"host":"b","zz":1}'
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(SCANNER.scan, [clean, other] * 40))
    assert answers == [CLEAN, UNDECLARED] * 40
