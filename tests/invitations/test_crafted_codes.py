"""Crafted invitation codes: any content behind a valid checksum gets the ordinary refusal.

The checksum has no key, so anyone can build a code that passes it around any content.
Each code here has a valid checksum; whatever it carries (random JSON, deep nesting, huge
strings, NUL bytes, wrong types, compressed bombs), every place that reads a code must
answer as it does for a damaged copy, never with a 5xx or a traceback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
import zlib

import pytest
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invitations import keys
from invitations.code import CHECKSUM_LENGTH, InvalidCode, decode
from nodes import client as node_client

EXAMPLES = 500
ACCEPT_API = "/api/v1/invitations/accept/"
PAGE = "/connections/accept/"
COPY_AGAIN = "Copy the code again in full"
HOLE = "@@hole@@"  # where a raw JSON fragment is spliced into a valid payload

FAST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def sign(packed: bytes) -> str:
    """A code around `packed` (the bytes after zlib) whose checksum is right."""
    body = base64.urlsafe_b64encode(packed).decode("ascii").rstrip("=")
    digest = hashlib.sha256(b"exalate-invitation:" + body.encode("ascii")).digest()
    return f"{body}.{base64.urlsafe_b64encode(digest).decode('ascii')[:CHECKSUM_LENGTH]}"


def sign_text(text: str | bytes) -> str:
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return sign(zlib.compress(raw, 9))


def valid_payload() -> dict:
    # Fixed values: Hypothesis replays a draw only when the data it draws from is the same.
    return {
        "v": 1,
        "src": {
            "uid": "5b0c36bb-3b7c-4c0e-9a63-2f1d8c1b6a01",
            "url": "https://desk-a.example.com",
            "sn": "desk-a",
            "pf": "xurrent",
            "ver": "1.0.0",
        },
        "conn": {
            "id": "0f4e2a7c-1d2b-4c8e-8a55-6b9d3e2f7c10",
            "name": "Support sync",
            "desc": "Incidents between the two service desks.",
            "mode": "script",
            "dsn": "desk-b",
            "duid": None,
        },
        "exp": 4102444800,  # 2100-01-01
        "tok": "t" * 43,
    }


PATHS = [
    ("v",),
    ("src",),
    ("conn",),
    ("exp",),
    ("tok",),
    *[("src", key) for key in ("uid", "url", "sn", "pf", "ver")],
    *[("conn", key) for key in ("id", "name", "desc", "mode", "dsn", "duid")],
]


def deep(n: int, shape: str) -> str:
    if shape == "list":
        return "[" * n + "]" * n
    if shape == "dict":
        return '{"a":' * n + "0" + "}" * n
    if shape == "mixed":
        return '[{"a":' * n + "0" + "}]" * n
    return "[" * n  # never closed


deep_fragments = st.builds(
    deep, st.integers(1, 300_000), st.sampled_from(["list", "dict", "mixed", "open"])
)
NASTY = [
    '"\\u0000"',
    '"a\\u0000b"',
    '"\\u0001\\u001f\\u007f"',
    '"\\ud800"',
    '"\\n"',
    '"desk\\tb"',
    '"\\u202e"',
    '""',
    '"   "',
    '"<script>alert(1)</script>"',
    json.dumps("x" * 200_000),
    json.dumps("é" * 5000, ensure_ascii=False),
    "1" * 5000,
    "1e999999",
    "-1",
    "0",
    "1.5",
    "true",
    "null",
    "[]",
    "{}",
    "NaN",
    "Infinity",
    "4102444800",
    "253402300800",
    "-62135596800",
    str(2**63),
    '"basic"',
    '"script"',
    '"http://"',
    '"file:///etc/passwd"',
    '"javascript:alert(1)"',
    '"https://a.example.com/?x=1"',
    '"https://user:pw@a.example.com"',
    '"http://[::1%25eth0]"',
    '"https://xn--a.example"',
    '"00000000-0000-0000-0000-000000000000"',
    '"{12345678-1234-5678-1234-567812345678}"',
    '"urn:uuid:12345678-1234-5678-1234-567812345678"',
    '"12345678123456781234567812345678"',
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=50)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=2000)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)
fragments = (
    json_values.map(json.dumps) | st.sampled_from(NASTY) | deep_fragments | scalars.map(json.dumps)
)


@st.composite
def mutated(draw) -> str:
    """A valid payload with one part replaced by anything, or taken out."""
    payload = valid_payload()
    path = draw(st.sampled_from(PATHS))
    parent = payload
    for key in path[:-1]:
        parent = parent[key]
    if draw(st.booleans()) and draw(st.booleans()):
        del parent[path[-1]]
        return sign_text(json.dumps(payload))
    parent[path[-1]] = HOLE
    text = json.dumps(payload).replace(f'"{HOLE}"', draw(fragments), 1)
    return sign_text(text)


def bomb(size: int, shape: str) -> str:
    """Small when compressed, huge (or deep) once decompressed."""
    if shape == "padding":  # a valid code, followed by megabytes of spaces
        return sign_text(json.dumps(valid_payload()) + " " * size)
    if shape == "description":
        payload = valid_payload()
        payload["conn"]["desc"] = "a" * size
        return sign_text(json.dumps(payload))
    if shape == "zeros":
        return sign_text(b"\0" * size)
    return sign_text("[" * size)


@st.composite
def trailing(draw) -> str:
    """A valid stream with something after it: bytes, a second stream, or cut short."""
    packed = zlib.compress(json.dumps(valid_payload()).encode(), 9)
    how = draw(st.sampled_from(["bytes", "stream", "cut", "raw"]))
    if how == "bytes":
        return sign(packed + draw(st.binary(min_size=1, max_size=50)))
    if how == "stream":
        return sign(packed + zlib.compress(b"[" * draw(st.integers(1, 100_000))))
    if how == "cut":
        return sign(packed[: draw(st.integers(0, len(packed) - 1))])
    return sign(json.dumps(valid_payload()).encode())  # not compressed at all


crafted_codes = st.one_of(
    mutated(),
    fragments.map(sign_text),
    st.builds(
        lambda src, conn: sign_text(json.dumps({**valid_payload(), "src": src, "conn": conn})),
        json_values,
        json_values,
    ),
    st.binary(max_size=3000).map(sign_text),
    st.binary(max_size=3000).map(sign),
    st.builds(
        bomb,
        st.integers(16_000, 3_000_000),
        st.sampled_from(["padding", "description", "zeros", "brackets"]),
    ),
    trailing(),
)


def refusal(code: str) -> str | None:
    """decode()'s verdict: None for a code it takes, else the message. Anything but
    InvalidCode escapes and fails the test."""
    try:
        decode(code)
    except InvalidCode as error:
        return error.message
    return None


# A few named ones, so a failure reads plainly and the fix has a fixed witness.
def _with(path, fragment: str) -> str:
    payload = valid_payload()
    payload[path[0]][path[1]] = HOLE
    return sign_text(json.dumps(payload).replace(f'"{HOLE}"', fragment, 1))


NAMED = {
    "deep list": sign_text("[" * 100_000 + "]" * 100_000),
    "deep value": _with(("conn", "name"), deep(50_000, "dict")),
    "nul in the connection id": _with(("conn", "id"), '"a\\u0000b"'),
    "nul in the name": _with(("conn", "name"), '"Support\\u0000sync"'),
    "control character in a short name": _with(("src", "sn"), '"desk\\u0007a"'),
    "lone surrogate in the description": _with(("conn", "desc"), '"\\ud800"'),
    "url that is not a node url": _with(("src", "url"), '"https://user:pw@a.example.com"'),
    "uid that is not a uuid": _with(("src", "uid"), '"not-a-uuid"'),
    "expiry beyond the calendar": sign_text(json.dumps({**valid_payload(), "exp": 10**30})),
    "expiry as a boolean": sign_text(json.dumps({**valid_payload(), "exp": True})),
    "megabytes of padding": bomb(2_000_000, "padding"),
    "huge description": bomb(1_000_000, "description"),
    "stream with trailing bytes": sign(zlib.compress(json.dumps(valid_payload()).encode()) + b"!"),
}


@pytest.fixture
def unthrottled(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"accept": "1000000/min"},
    }


@pytest.fixture
def no_network(monkeypatch):
    """A code that reads well gets as far as calling its source: nobody answers."""

    def unreachable(*args, **kwargs):
        raise node_client.NodeError("unreachable", "The other node cannot be reached.")

    monkeypatch.setattr(node_client, "request", unreachable)


@pytest.fixture
def acceptor_body() -> dict:
    return {
        "uid": str(uuid.uuid4()),
        "url": "https://desk-b.example.com",
        "short_name": "desk-b",
        "platform": "xurrent",
        "version": "1.0.0",
        "connection_id": str(uuid.uuid4()),
        "public_key": keys.public_key_text(keys.new_private_key()),
    }


# --- decode() -------------------------------------------------------------------------------


@pytest.mark.parametrize("code", NAMED.values(), ids=NAMED.keys())
def test_a_named_crafted_code_is_refused_as_damaged(code):
    with pytest.raises(InvalidCode) as error:
        decode(code)
    assert COPY_AGAIN in error.value.message


@given(code=crafted_codes)
@FAST
def test_decode_raises_nothing_but_invalid_code(code):
    refusal(code)


def test_a_valid_payload_built_by_hand_is_read():
    # The strategies' starting point really is a code: what they break is theirs.
    assert refusal(sign_text(json.dumps(valid_payload()))) is None


# --- the places that read a code --------------------------------------------------------------


@pytest.mark.parametrize("code", NAMED.values(), ids=NAMED.keys())
def test_the_accept_api_answers_invalid_code_to_a_named_crafted_code(
    client, node, unthrottled, acceptor_body, code
):
    response = client.post(
        ACCEPT_API, {"code": code, "acceptor": acceptor_body}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_code"


def test_the_accept_api_never_answers_5xx_to_a_crafted_code(
    client, node, unthrottled, acceptor_body
):
    @given(code=crafted_codes)
    @FAST
    def check(code):
        response = client.post(
            ACCEPT_API, {"code": code, "acceptor": acceptor_body}, content_type="application/json"
        )
        assert response.status_code < 500, response.content
        if refusal(code) is not None and len(code) <= 8192:
            assert response.status_code == 400
            assert response.json()["code"] == "invalid_code"

    check()


@pytest.mark.parametrize("code", NAMED.values(), ids=NAMED.keys())
def test_the_accept_page_shows_the_copy_again_error_for_a_named_crafted_code(
    admin_client, node, code
):
    for data in ({"code": code}, {"code": code, "local_short_name": "desk-b", "confirm": "1"}):
        response = admin_client.post(PAGE, data)
        assert response.status_code == 200
        assert COPY_AGAIN in response.content.decode()


def test_the_accept_page_never_answers_5xx_to_a_crafted_code(admin_client, node, no_network):
    @given(code=crafted_codes, confirm=st.booleans())
    @FAST
    def check(code, confirm):
        data = {"code": code}
        if confirm:
            data.update(local_short_name="desk-b", confirm="1")
        response = admin_client.post(PAGE, data)
        assert response.status_code < 500
        message = refusal(code)
        if message is not None and len(code) <= 8192:
            assert response.status_code == 200
            assert response.context["form"].errors["code"] == [message]

    check()


@pytest.mark.parametrize("code", NAMED.values(), ids=NAMED.keys())
def test_the_accept_command_explains_a_named_crafted_code(db, node, code):
    with pytest.raises(CommandError, match=COPY_AGAIN):
        call_command("accept_invitation", code)


def test_the_accept_command_refuses_a_crafted_code_with_a_message(db, node, no_network):
    @given(code=crafted_codes)
    @settings(FAST, max_examples=EXAMPLES // 5)
    def check(code):
        message = refusal(code)
        try:
            # "--": a crafted code may start with "-", which would read as an option.
            call_command("accept_invitation", "--", code)
        except CommandError as error:
            if message is not None:
                assert str(error) == message
        else:
            assert message is None

    check()
