"""The invitation code: everything the acceptor needs, and no damaged copy gets through."""

import string
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invitations.code import (
    CHECKSUM_LENGTH,
    MAX_LENGTH,
    TOKEN_BYTES,
    InvalidCode,
    InvitationCode,
    decode,
    encode,
    new_token,
)

URL_SAFE = string.ascii_letters + string.digits + "-_"
# Everything a person could paste by mistake: the code's own alphabet, its separator,
# look-alikes and other printable characters (whitespace is ignored, tested apart).
TYPED = URL_SAFE + ".=+/~!@#$%^&*()[]{}<>,;:'\"`|\\?éßЖ中"


def sample(**overrides) -> InvitationCode:
    values = {
        "source_uid": str(uuid.uuid4()),
        "source_url": "https://desk-a.example.com",
        "source_short_name": "desk-a",
        "source_platform": "xurrent",
        "source_version": "1.0.0",
        "connection_id": str(uuid.uuid4()),
        "name": "Support sync",
        "description": "Incidents between the two service desks.",
        "mode": "script",
        "destination_short_name": "desk-b",
        "destination_uid": str(uuid.uuid4()),
        "expires_at": datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
        "token": new_token(),
    }
    values.update(overrides)
    return InvitationCode(**values)


CODE = encode(sample())

# What the wizard and the model fields let through: short names of letters, digits and
# " .-_"; names and descriptions of any text but control characters (tabs and line breaks
# allowed in a description).
short_text = st.text(
    alphabet=st.characters(categories=["L", "N"]) | st.sampled_from(" .-_"),
    min_size=1,
    max_size=40,
).filter(lambda text: all(char.isalnum() or char in " .-_" for char in text))
codes = st.builds(
    sample,
    name=st.text(alphabet=st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=100),
    description=st.text(
        alphabet=st.characters(exclude_categories=("Cs", "Cc"), include_characters="\t\n\r"),
        max_size=1000,
    ),
    source_short_name=short_text,
    destination_short_name=short_text,
    mode=st.sampled_from(["basic", "script"]),
    destination_uid=st.none() | st.uuids().map(str),
    expires_at=st.integers(min_value=0, max_value=2**33).map(
        lambda s: datetime.fromtimestamp(s, tz=UTC)
    ),
)


def test_a_code_carries_everything_the_acceptor_needs():
    original = sample()
    assert decode(encode(original)) == original


def test_a_code_is_one_line_of_url_safe_characters_with_a_checksum():
    body, checksum = CODE.split(".")
    assert set(body) <= set(URL_SAFE)
    assert set(checksum) <= set(URL_SAFE)
    assert len(checksum) == CHECKSUM_LENGTH
    assert len(CODE) <= MAX_LENGTH


def test_the_token_has_at_least_256_random_bits():
    assert TOKEN_BYTES * 8 >= 256
    assert len({new_token() for _ in range(50)}) == 50


def test_the_token_is_not_in_the_repr():
    original = sample()
    assert original.token not in repr(original)


@given(codes)
@settings(max_examples=60, deadline=None)
def test_every_code_round_trips(original):
    text = encode(original)
    assert len(text) <= MAX_LENGTH
    decoded = decode(text)
    if len(original.description) == len(decoded.description):
        assert decoded == original
    else:
        # Shortened only to fit the length limit; the source sends the full text later.
        assert original.description.startswith(decoded.description)
        assert replace(decoded, description=original.description) == original


def test_control_characters_in_the_name_or_description_are_left_out_of_the_code():
    # The acceptor refuses them (a NUL cannot even be stored); an admin may have pasted
    # them in the admin, and the code must stay readable.
    original = sample(name="Support\x00 sync\x1b", description="Line one\nline\ttwo\x07\ud800")
    decoded = decode(encode(original))
    assert decoded.name == "Support sync"
    assert decoded.description == "Line one\nline\ttwo"


def test_line_breaks_and_spaces_from_an_email_are_ignored():
    wrapped = "\n".join(CODE[i : i + 60] for i in range(0, len(CODE), 60))
    assert decode(f"  {wrapped} \r\n") == decode(CODE)


@given(st.data())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_any_changed_character_is_detected(data):
    position = data.draw(st.integers(0, len(CODE) - 1), label="position")
    replacement = data.draw(
        st.sampled_from(TYPED).filter(lambda c: c != CODE[position]), label="replacement"
    )
    with pytest.raises(InvalidCode) as error:
        decode(CODE[:position] + replacement + CODE[position + 1 :])
    assert "Copy the code again in full" in error.value.message


@given(st.data())
@settings(max_examples=200)
def test_any_missing_character_is_detected(data):
    position = data.draw(st.integers(0, len(CODE) - 1), label="position")
    with pytest.raises(InvalidCode):
        decode(CODE[:position] + CODE[position + 1 :])


@given(st.data())
@settings(max_examples=300)
def test_any_extra_character_is_detected(data):
    position = data.draw(st.integers(0, len(CODE)), label="position")
    extra = data.draw(st.sampled_from(TYPED), label="extra")
    with pytest.raises(InvalidCode):
        decode(CODE[:position] + extra + CODE[position:])


def test_every_single_character_change_of_a_code_is_detected_exhaustively():
    # Besides the random search above: every position, every character of the alphabet.
    for position in range(len(CODE)):
        for replacement in URL_SAFE + ".":
            if replacement == CODE[position]:
                continue
            damaged = CODE[:position] + replacement + CODE[position + 1 :]
            with pytest.raises(InvalidCode):
                decode(damaged)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "hello", ".", CODE.split(".")[0], CODE + "." + CODE, "x" * (MAX_LENGTH + 1)],
    ids=["empty", "blank", "a word", "a dot", "no checksum", "two codes", "too long"],
)
def test_text_that_is_not_a_code_is_refused(text):
    with pytest.raises(InvalidCode):
        decode(text)


def test_a_code_from_an_unknown_format_version_says_so():
    import base64
    import hashlib
    import json
    import zlib

    raw = json.dumps({"v": 99}).encode()
    body = base64.urlsafe_b64encode(zlib.compress(raw)).decode().rstrip("=")
    digest = hashlib.sha256(b"exalate-invitation:" + body.encode()).digest()
    checksum = base64.urlsafe_b64encode(digest).decode()[:CHECKSUM_LENGTH]
    with pytest.raises(InvalidCode) as error:
        decode(f"{body}.{checksum}")
    assert "version" in error.value.message


def test_a_very_long_description_is_shortened_to_keep_the_code_within_the_limit():
    noisy = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(1000))
    text = encode(sample(description=noisy, name="n" * 100))
    assert len(text) <= MAX_LENGTH
    assert noisy.startswith(decode(text).description)


def test_the_expiry_survives_to_the_second():
    moment = datetime.now(tz=UTC).replace(microsecond=0) + timedelta(hours=72)
    assert decode(encode(sample(expires_at=moment))).expires_at == moment
