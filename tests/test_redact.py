"""Tests for logstream._redact: secret keys and value patterns masked in a copy of any value."""

from __future__ import annotations

import base64
import copy
import dataclasses
import enum
import json
import re
from collections import ChainMap, OrderedDict, UserDict, deque, namedtuple
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Callable

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import logstream
from logstream._errors import LogStreamError
from logstream._patches import RunLog, RunLogPatch, add_op, replace_op
from logstream._redact import (
    DEFAULT_MASK,
    DEFAULT_PATTERNS,
    DEFAULT_SAFE_KEYS,
    DEFAULT_SECRET_KEYS,
    RedactionConfigError,
    SecretRedactor,
    redact_secrets,
)
from logstream._serialize import dumps

M = DEFAULT_MASK
OPENAI = "sk-" + "a1B2" * 12
OPENAI_PROJECT = "sk-proj-" + "Zy9_-x" * 8
ANTHROPIC = "sk-ant-api03-" + "q" * 90 + "-AA"
AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SESSION_ID = "ASIAY34FZKBOKMUTVV7A"
GITHUB_CLASSIC = "ghp_" + "A1b2C3d4E5" * 4
GITHUB_FINE = "github_pat_11ABCDEFG0" + "x_Y" * 20
SLACK_BOT = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_USER = "xoxp-123456789012-abcdefABCDEF"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEpAIBAAKCAQEA7bq98\nq2lfd+Q==\n"
    "-----END RSA PRIVATE KEY-----"
)


class TestSecretKeys:
    @pytest.mark.parametrize(
        "key",
        [
            "password",
            "PASSWORD",
            "db_passwd",
            "passwords",
            "passphrase",
            "secret",
            "client_secret",
            "clientSecret",
            "secrets",
            "secret_key",
            "api_key",
            "apikey",
            "apiKey",
            "API-KEY",
            "x-api-key",
            "X-Api-Key",
            "openai_api_key",
            "OPENAI_API_KEY",
            "anthropicApiKey",
            "api_keys",
            "private_key",
            "privateKey",
            "AWS_SECRET_ACCESS_KEY",
            "aws_access_key",
            "token",
            "access_token",
            "accessToken",
            "refresh_token",
            "id_token",
            "session_token",
            "x-amz-security-token",
            "csrf_token",
            "Authorization",
            "proxy-authorization",
            "auth",
            "basic_auth",
            "oauth",
            "cookie",
            "Cookie",
            "set-cookie",
            "Set-Cookie",
            "cookies",
            "credential",
            "credentials",
            "session",
            "jwt",
            "my secret",
        ],
    )
    def test_secret_keys_are_masked(self, key: str) -> None:
        """A value under a key that ends like a secret key is replaced by the mask."""
        assert redact_secrets.is_secret_key(key)
        assert redact_secrets({key: "value", "other": "kept"}) == {key: M, "other": "kept"}

    @pytest.mark.parametrize(
        "key",
        [
            "max_tokens",
            "maxTokens",
            "max_token",
            "tokens",
            "token_count",
            "total_tokens",
            "prompt_tokens",
            "completion_tokens",
            "num_tokens",
            "input_token_details",
            "time_to_first_token",
            "cost_per_token",
            "eos_token",
            "bos_token",
            "pad_token",
            "eos_token_id",
            "next_token",
            "NextToken",
            "tokenizer",
            "session_id",
            "sessionId",
            "api_key_id",
            "aws_access_key_id",
            "secret_name",
            "password_hash",
            "key",
            "keys",
            "author",
            "name",
            "",
        ],
    )
    def test_lookalike_keys_are_kept(self, key: str) -> None:
        """Counters, settings and ids that only look like secret keys keep their values."""
        assert not redact_secrets.is_secret_key(key)
        assert redact_secrets({key: 5}) == {key: 5}

    def test_none_under_a_secret_key_is_kept(self) -> None:
        """None under a secret key stays None: it reveals nothing and shows the key is unset."""
        assert redact_secrets({"api_key": None}) == {"api_key": None}

    @pytest.mark.parametrize("value", [0, 1234, 1.5, True, "", ["a", "b"], {"user": "u"}, ("x",)])
    def test_any_value_under_a_secret_key_is_masked_whole(self, value: Any) -> None:
        """Numbers, empty strings and whole containers under a secret key become the mask."""
        assert redact_secrets({"credentials": value}) == {"credentials": M}

    def test_secret_keys_at_any_depth(self) -> None:
        """Secret keys are found in dicts nested in lists, tuples and dicts."""
        value = {"a": [{"b": ({"password": "p", "ok": 1},)}]}
        assert redact_secrets(value) == {"a": [{"b": ({"password": M, "ok": 1},)}]}

    def test_non_str_keys_are_not_secret(self) -> None:
        """Keys that are not strings are never secret keys and are kept as they are."""
        value = {1: "a", None: "b", ("password",): "c"}
        assert redact_secrets(value) == value

    def test_str_subclass_keys_are_checked(self) -> None:
        """A str subclass key is checked as its text."""

        class Key(str):
            pass

        key = Key("api_key")
        out = redact_secrets({key: "v"})
        assert out == {"api_key": M}
        assert type(next(iter(out))) is Key

    def test_keys_replace_the_defaults(self) -> None:
        """keys= replaces the default key endings; extra_keys= adds to them."""
        only_pin = SecretRedactor(keys=["pin"])
        assert only_pin({"pin": 1, "user_pin": 2, "password": "p"}) == {
            "pin": M,
            "user_pin": M,
            "password": "p",
        }
        more = SecretRedactor(extra_keys=["ssn"])
        assert more({"SSN": "1", "password": "p"}) == {"SSN": M, "password": M}

    def test_safe_keys_match_whole_words(self) -> None:
        """safe_keys spare keys ending in those words only: per_token spares no super_token."""
        assert redact_secrets({"cost_per_token": 1, "super_token": "t", "supertoken": "t"}) == {
            "cost_per_token": 1,
            "super_token": M,
            "supertoken": M,
        }

    def test_no_safe_keys(self) -> None:
        """safe_keys=() masks every key that ends like a secret key."""
        strict = SecretRedactor(safe_keys=())
        assert strict({"eos_token": "</s>", "max_tokens": 5}) == {"eos_token": M, "max_tokens": 5}

    def test_default_key_lists_are_documented_shapes(self) -> None:
        """The default key lists hold strings only, each with letters."""
        assert all(re.search("[a-z]", k) for k in DEFAULT_SECRET_KEYS + DEFAULT_SAFE_KEYS)


class TestValuePatterns:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("Authorization: Bearer abcdefghijklmnop1234", f"Authorization: Bearer {M}"),
            ("bearer abc.DEF_ghi-jkl~mno+pqr/stu==", f"bearer {M}"),
            ("BEARER abcdefghijklmnopqrstuvwxyz", f"BEARER {M}"),
            (f"Bearer {JWT}", f"Bearer {M}"),
            ("Basic dXNlcjpwYXNzd29yZA==", f"Basic {M}"),
            ("basic dXNlcjpwYXNz", f"basic {M}"),
            (f"key={OPENAI}", f"key={M}"),
            (f"{OPENAI_PROJECT} trailing", f"{M} trailing"),
            (f"x-api-key: {ANTHROPIC}", f"x-api-key: {M}"),
            (f"id {AWS_ID} and {AWS_SESSION_ID}", f"id {M} and {M}"),
            (f"GITHUB_TOKEN={GITHUB_CLASSIC}", f"GITHUB_TOKEN={M}"),
            (GITHUB_FINE, M),
            (f"{SLACK_BOT},{SLACK_USER}", f"{M},{M}"),
            (f'{{"token": "{JWT}"}}', f'{{"token": "{M}"}}'),
            (f"before\n{PEM}\nafter", f"before\n{M}\nafter"),
            ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA", M),
            ("postgres://app:hunter2@db:5432/prod", f"postgres://app:{M}@db:5432/prod"),
            ("redis://:s3cr3t@cache:6379", f"redis://:{M}@cache:6379"),
            ("https://user:p@ss:w0rd@host/x?y=1", f"https://user:{M}@host/x?y=1"),
        ],
    )
    def test_secrets_in_text_are_masked(self, text: str, expected: str) -> None:
        """Each value pattern masks its secret, inside longer text, leaving the rest."""
        assert redact_secrets(text) == expected
        assert redact_secrets.redact_text(text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            "tok",
            "",
            "We use a bearer token in the header.",
            "Bearer short",
            "a basic understanding of the problem",
            "Basic Understanding",
            "Basic authentication is not secure",
            "ask-questions-about-anything-you-like",
            "sk-learn",
            "scikit-learn sk-short",
            "AKIAIOSFODNN7EXAMPL",  # 15 characters after AKIA
            "XAKIAIOSFODNN7EXAMPLE",
            "ghp_short",
            "xoxb-1",
            "eyJhbGciOi",
            "a.b.c",
            "-----BEGIN PUBLIC KEY-----\nMIIBIjANBg\n-----END PUBLIC KEY-----",
            "https://example.com:8080/path?q=a:b@c",
            "mailto:someone@example.com",
            "user@example.com",
            "https://user@example.com/",
            "The task-runner-sk-version is fine",
        ],
    )
    def test_lookalike_text_is_kept(self, text: str) -> None:
        """Prose and non-secret strings that resemble a pattern come back as the same object."""
        assert redact_secrets(text) is text

    def test_each_default_pattern_has_a_positive_case(self) -> None:
        """Every default pattern is exercised by the positive cases above."""
        positives = [
            "Bearer abcdefghijklmnop1234",
            "bearer abcdefghijklmnop1234",
            "Basic dXNlcjpwYXNz",
            "basic dXNlcjpwYXNz",
            PEM,
            "postgres://app:hunter2@db",
            ANTHROPIC,
            OPENAI,
            AWS_ID,
            GITHUB_CLASSIC,
            SLACK_BOT,
            JWT,
        ]
        names = set()
        for name, source in DEFAULT_PATTERNS.items():
            if any(re.search(source, text) for text in positives):
                names.add(name)
        assert names == set(DEFAULT_PATTERNS)

    def test_many_secrets_in_one_string(self) -> None:
        """Several secrets in one text are all masked."""
        text = f"a {OPENAI} b {AWS_ID} c {JWT} d"
        assert redact_secrets(text) == f"a {M} b {M} c {M} d"

    def test_strings_everywhere_are_scanned(self) -> None:
        """Strings in lists, tuples, sets, frozensets and dict keys are scanned."""
        value = {
            "l": [OPENAI],
            "t": (AWS_ID, "ok"),
            "s": {JWT, "ok"},
            "f": frozenset({GITHUB_CLASSIC}),
            f"key {OPENAI}": 1,
        }
        assert redact_secrets(value) == {
            "l": [M],
            "t": (M, "ok"),
            "s": {M, "ok"},
            "f": frozenset({M}),
            f"key {M}": 1,
        }

    def test_masked_dict_keys_do_not_overwrite_each_other(self) -> None:
        """Two keys that mask to the same text are both kept."""
        out = redact_secrets({OPENAI: 1, AWS_ID: 2})
        assert out == {M: 1, f"{M} (2)": 2}

    def test_str_subclass_values(self) -> None:
        """A str subclass is returned as is when clean, as a plain str when masked."""

        class Text(str):
            pass

        clean, dirty = Text("fine"), Text(f"k {OPENAI}")
        assert redact_secrets(clean) is clean
        out = redact_secrets([dirty])[0]
        assert out == f"k {M}"
        assert type(out) is str


class TestCopying:
    def test_input_is_not_mutated_and_containers_are_new(self) -> None:
        """The input is left as it was; every container in the result is a new object."""
        inner = {"api_key": "k", "list": [OPENAI]}
        value = {"a": inner, "t": (inner,), "s": {"x"}}
        before = copy.deepcopy(value)
        out = redact_secrets(value)
        assert value == before
        assert out is not value
        assert out["a"] is not inner
        assert out["a"]["list"] is not inner["list"]
        assert out["s"] is not value["s"]

    def test_clean_values_are_equal_copies(self) -> None:
        """A value with no secret comes back equal, as a copy."""
        value = {"a": [1, 2.5, None, True, "text"], "b": ({"c": "d"},)}
        out = redact_secrets(value)
        assert out == value
        assert out is not value

    def test_scalars_come_back_as_themselves(self) -> None:
        """Numbers, booleans, None and clean strings are returned as they are."""
        for value in [1, 2.5, True, None, "tok", 10**100]:
            assert redact_secrets(value) is value

    def test_tuple_types_are_kept(self) -> None:
        """Tuples stay tuples, namedtuples stay namedtuples of the same class."""
        Pair = namedtuple("Pair", ["key", "value"])
        out = redact_secrets({"p": Pair("api", OPENAI), "t": (OPENAI,)})
        assert out == {"p": Pair("api", M), "t": (M,)}
        assert type(out["p"]) is Pair

    def test_dict_and_list_subclasses_become_plain(self) -> None:
        """Dict and list subclasses are copied into plain dicts and lists."""

        class MyList(list):  # type: ignore[type-arg]
            pass

        out = redact_secrets(OrderedDict(a=MyList([OPENAI])))
        assert type(out) is dict
        assert type(out["a"]) is list
        assert out == {"a": [M]}

    def test_sets_keep_their_types(self) -> None:
        """Sets stay sets and frozensets stay frozensets."""
        out = redact_secrets([{OPENAI}, frozenset({"a"})])
        assert out == [{M}, frozenset({"a"})]
        assert type(out[0]) is set
        assert type(out[1]) is frozenset

    def test_cycles_are_copied_as_cycles(self) -> None:
        """A list or dict that contains itself comes back as a copy that contains itself."""
        items: list[Any] = [OPENAI]
        items.append(items)
        table: dict[str, Any] = {"password": "p"}
        table["self"] = table
        table["items"] = items
        out = redact_secrets(table)
        assert out["password"] == M
        assert out["self"] is out
        assert out["items"][0] == M
        assert out["items"][1] is out["items"]
        assert out["items"] is not items

    def test_cycle_through_a_tuple_ends_in_the_mask(self) -> None:
        """A cycle that closes through a tuple cannot be rebuilt, so it ends in the mask."""
        holder: list[Any] = []
        pair = (OPENAI, holder)
        holder.append(pair)
        out = redact_secrets(pair)
        assert out == (M, [M])

    def test_shared_references_stay_shared(self) -> None:
        """An object referenced twice is copied once and referenced twice in the copy."""
        shared = {"token": "t"}
        out = redact_secrets([shared, shared, (shared,)])
        assert out[0] is out[1] is out[2][0]
        assert out[0] == {"token": M}

    def test_unknown_objects_are_passed_by_reference(self) -> None:
        """Objects and bytes whose rendering holds no secret come back as they are."""

        class Message:
            content = f"my key is {OPENAI}"

        message = Message()
        data = b"Bearer abcdefgh"
        out = redact_secrets({"m": message, "b": data})
        assert out["m"] is message
        assert out["b"] is data

    def test_bytes_with_a_secret_are_masked(self) -> None:
        """bytes, bytearray and memoryview holding a secret come back as masked bytes."""
        raw = b"Authorization: Bearer abcdefghijklmnop1234 \xff"
        for value in (raw, bytearray(raw), memoryview(raw)):
            assert redact_secrets(value) == f"Authorization: Bearer {M} \xff".encode("latin-1")

    def test_objects_can_be_redacted_through_their_json_form(self) -> None:
        """redact_secrets(json.loads(dumps(obj))) reaches inside objects too."""

        class Message:
            def model_dump(self) -> dict[str, Any]:
                return {"content": f"my key is {OPENAI}", "api_key": "k"}

        out = redact_secrets(json.loads(dumps({"m": Message()})))
        assert out == {"m": {"content": f"my key is {M}", "api_key": M}}

    def test_patches_and_logs_are_redacted(self) -> None:
        """A RunLogPatch's ops and a RunLog's ops and state are redacted in copies."""
        op = add_op("/logs/x/inputs", {"api_key": "k", "q": OPENAI})
        patch = RunLogPatch(op)
        out = redact_secrets(patch)
        assert type(out) is RunLogPatch
        assert out.ops == [add_op("/logs/x/inputs", {"api_key": M, "q": M})]
        assert patch.ops == [op]
        log = RunLogPatch(replace_op("", {"logs": {}})) + RunLogPatch(
            add_op("/logs/x", {"token": "t"})
        )
        redacted_log = redact_secrets(log)
        assert type(redacted_log) is RunLog
        assert redacted_log.state == {"logs": {"x": {"token": M}}}
        assert redacted_log.ops[1]["value"] == {"token": M}
        assert log.state == {"logs": {"x": {"token": "t"}}}

    def test_broken_dict_subclass_is_left_alone(self) -> None:
        """A dict subclass whose items() raises is passed through rather than failing."""

        class Broken(dict):  # type: ignore[type-arg]
            def items(self) -> Any:
                msg = "no items"
                raise RuntimeError(msg)

        broken = Broken(a=1)
        assert redact_secrets([broken])[0] is broken

    @pytest.mark.parametrize("kind", ["list", "dict", "tuple"])
    def test_very_deep_values_do_not_hit_the_recursion_limit(self, kind: str) -> None:
        """100,000 levels of nesting are copied with the secret at the bottom masked."""
        value: Any = OPENAI
        for _ in range(100_000):
            value = [value] if kind == "list" else {"k": value} if kind == "dict" else (value,)
        out = redact_secrets(value)
        for _ in range(100_000):
            out = out[0] if kind != "dict" else out["k"]
        assert out == M

    def test_large_list(self) -> None:
        """A 1,000,000-item list is copied with its secrets masked."""
        value = [f"item {i}" for i in range(1_000_000)]
        value[-1] = OPENAI
        out = redact_secrets(value)
        assert out[-1] == M
        assert out[:2] == ["item 0", "item 1"]


class TestConfiguration:
    @pytest.mark.parametrize(
        "options",
        [
            {"keys": "password"},
            {"extra_keys": "pin"},
            {"safe_keys": "eos_token"},
            {"keys": [1]},
            {"keys": ["--"]},
            {"keys": 5},
            {"safe_keys": [" "]},
            {"patterns": "sk-.*"},
            {"patterns": re.compile("x")},
            {"extra_patterns": ["("]},
            {"extra_patterns": [b"bytes"]},
            {"patterns": ["(?P<g>a)", "(?P<g>b)"]},
            {"mask": None},
        ],
    )
    def test_bad_configuration_raises(self, options: dict[str, Any]) -> None:
        """Bare strings, non-strings, empty keys, broken patterns and a bad mask raise."""
        with pytest.raises(RedactionConfigError, match="SecretRedactor"):
            SecretRedactor(**options)

    def test_error_is_a_logstream_error_and_value_error(self) -> None:
        """RedactionConfigError is a LogStreamError and a ValueError."""
        assert issubclass(RedactionConfigError, LogStreamError)
        assert issubclass(RedactionConfigError, ValueError)

    def test_custom_mask(self) -> None:
        """mask= sets what secrets are replaced by, for keys and patterns."""
        redact = SecretRedactor(mask="***")
        assert redact({"token": "t", "q": f"Bearer {OPENAI}"}) == {
            "token": "***",
            "q": "Bearer ***",
        }
        assert redact.mask == "***"

    def test_patterns_replace_and_extra_patterns_add(self) -> None:
        """patterns= replaces the defaults (a mapping's values are used); extra_ adds."""
        only_pins = SecretRedactor(patterns={"pin": r"PIN-\d{4}"})
        assert only_pins(f"PIN-1234 {OPENAI}") == f"{M} {OPENAI}"
        both = SecretRedactor(extra_patterns=[r"PIN-\d{4}"])
        assert both(f"PIN-1234 {OPENAI}") == f"{M} {M}"

    def test_group_one_is_masked(self) -> None:
        """Where a pattern has groups, only group 1 is masked."""
        redact = SecretRedactor(patterns=[r"pin=(\d+)(;)?"])
        assert redact("pin=1234; pin=99") == f"pin={M}; pin={M}"

    def test_compiled_patterns_and_flags(self) -> None:
        """Compiled patterns keep their flags; a leading (?i) works too."""
        redact = SecretRedactor(
            patterns=[re.compile("secret-\\w+", re.IGNORECASE), "(?i)pw:(\\S+)"]
        )
        assert redact("SECRET-abc PW:hunter2") == f"{M} PW:{M}"

    def test_no_patterns(self) -> None:
        """patterns=() scans nothing; keys still work."""
        redact = SecretRedactor(patterns=())
        assert redact({"q": OPENAI, "token": "t"}) == {"q": OPENAI, "token": M}

    def test_introspection(self) -> None:
        """The configuration can be read back, and the repr summarizes it."""
        redact = SecretRedactor(keys=["a"], extra_keys=["b"], safe_keys=[], patterns=["x"])
        assert redact.keys == ("a", "b")
        assert redact.safe_keys == ()
        assert [p.pattern for p in redact.patterns] == ["x"]
        assert repr(redact) == "SecretRedactor(mask='[REDACTED]', keys=2, safe_keys=0, patterns=1)"

    def test_default_instance_is_exported(self) -> None:
        """redact_secrets and SecretRedactor are importable from logstream."""
        assert logstream.redact_secrets is redact_secrets
        assert logstream.SecretRedactor is SecretRedactor
        assert isinstance(redact_secrets, SecretRedactor)


# Hypothesis strategies: secrets (the text to plant, the part that must vanish).

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
B64URL = ALNUM + "_-"


def secret_from(prefix: str, alphabet: str, size: int, max_size: int) -> Any:
    """Return a strategy of ``(prefix + body, prefix + body)`` with a random body."""
    body = st.text(alphabet=alphabet, min_size=size, max_size=max_size)
    return body.map(lambda b: (prefix + b, prefix + b))


def basic_credentials(pair: tuple[str, str]) -> tuple[str, str]:
    """Return a ``Basic`` header for ``user:password`` with padding, and its base64."""
    encoded = base64.b64encode(f"{pair[0]}:{pair[1]}".encode()).decode()
    return f"Basic {encoded}", encoded


secrets = st.one_of(
    secret_from("sk-", ALNUM, 20, 48),
    secret_from("sk-proj-", B64URL, 20, 60),
    secret_from("sk-ant-api03-", B64URL, 20, 60),
    secret_from("AKIA", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 16),
    secret_from("ASIA", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 16),
    secret_from("ghp_", ALNUM, 36, 40),
    secret_from("github_pat_", ALNUM + "_", 40, 82),
    secret_from("xoxb-", ALNUM + "-", 10, 50),
    st.tuples(
        st.text(B64URL, min_size=8, max_size=40),
        st.text(B64URL, min_size=8, max_size=80),
        st.text(B64URL, min_size=0, max_size=43),
    ).map(lambda p: ("eyJ" + ".".join(p), "eyJ" + ".".join(p))),
    st.text(ALNUM + "._~+/-", min_size=16, max_size=60).map(lambda t: (f"Bearer {t}", t)),
    st.tuples(st.text(ALNUM, min_size=1, max_size=8), st.text(ALNUM, min_size=4, max_size=20))
    .filter(lambda p: (len(p[0]) + len(p[1]) + 1) % 3 != 0)
    .map(basic_credentials),
    st.text(ALNUM + "!$%&*()_+=-", min_size=6, max_size=30).map(
        lambda pw: (f"https://user:{pw}@db.example.com:5432/app", pw)
    ),
    st.text(ALNUM + "+/", min_size=20, max_size=64).map(
        lambda body: (
            f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----",
            body,
        )
    ),
)
filler = st.text(alphabet=ALNUM + " .,:;!?-_/\n\u00e9\u4e2d", max_size=20)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | filler
SECRET_KEY_SPELLINGS = [
    "api_key",
    "X-Api-Key",
    "openaiApiKey",
    "AWS_SECRET_ACCESS_KEY",
    "password",
    "Authorization",
    "refresh_token",
    "client_secret",
    "Set-Cookie",
    "privateKey",
]


@st.composite
def nested_around(draw: Any, leaf: Any, hashable: bool = True) -> Any:
    """Return a random nesting of dicts, lists, tuples and sets around ``leaf``.

    With ``hashable=False`` the leaf is never put where it must be hashed (a set element or
    a dict key), so an unhashable value can later take its place.
    """
    value = leaf
    kinds = ["dict", "list", "tuple", "set", "key"] if hashable else ["dict", "list", "tuple"]
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(kinds))
        siblings = draw(st.lists(scalars, max_size=3))
        if kind == "dict":
            keys = draw(st.lists(st.text(ALNUM, max_size=6), max_size=3, unique=True))
            container: Any = dict(zip(keys, siblings))
            container[draw(st.text(ALNUM, min_size=7, max_size=9))] = value
            value = container
        elif kind in ("list", "tuple"):
            index = draw(st.integers(0, len(siblings)))
            items = [*siblings[:index], value, *siblings[index:]]
            value = items if kind == "list" else tuple(items)
        elif kind == "set" and isinstance(value, (str, tuple)):
            try:
                value = {value, *[s for s in siblings if isinstance(s, str)]}
            except TypeError:  # a tuple holding a list
                value = [value]
        elif kind == "key" and isinstance(value, str):
            value = {value: draw(scalars)}
        else:
            value = [value]
    return value


SENTINEL = "\x00leaf\x00"


def swap(value: Any, leaf: Any) -> Any:
    """Return ``value`` with :data:`SENTINEL` replaced by ``leaf`` (a test-side helper)."""
    if value == SENTINEL and type(value) is str:
        return leaf
    if isinstance(value, dict):
        return {swap(k, leaf): swap(v, leaf) for k, v in value.items()}
    if isinstance(value, list):
        return [swap(v, leaf) for v in value]
    if isinstance(value, tuple):
        return tuple(swap(v, leaf) for v in value)
    if isinstance(value, set):
        return {swap(v, leaf) for v in value}
    return value


@st.composite
def planted_values(draw: Any) -> tuple[Any, str]:
    """Return ``(value, secret)``: a secret planted at a random depth, in text or under a key.

    The surroundings are drawn first, around a sentinel, and must not contain the secret
    by chance, so that finding it in the output can only mean it was not masked.
    """
    if draw(st.booleans()):
        text, secret = draw(secrets)
        before, after = draw(filler), draw(filler)
        assume(secret not in before + after)
        leaf: Any = f"{before} {text} {after}"
    else:
        secret = "PLANTED" + draw(st.text(ALNUM, min_size=12, max_size=20))
        hidden: Any = draw(st.sampled_from([secret, [secret], {"inner": (secret,)}]))
        leaf = {draw(st.sampled_from(SECRET_KEY_SPELLINGS)): hidden}
    around = draw(nested_around(SENTINEL, hashable=isinstance(leaf, str)))
    assume(secret not in repr(around) and secret not in dumps(around))
    return swap(around, leaf), secret


class TestProperties:
    @settings(max_examples=400, deadline=None)
    @given(planted_values())
    def test_planted_secret_never_survives(self, planted: tuple[Any, str]) -> None:
        """A secret planted at any depth appears in neither the repr nor the JSON of the output."""
        value, secret = planted
        before = copy.deepcopy(value)
        out = redact_secrets(value)
        assert secret not in repr(out)
        assert secret not in dumps(out)
        assert value == before

    @settings(max_examples=300, deadline=None)
    @given(planted_values())
    def test_redaction_is_idempotent(self, planted: tuple[Any, str]) -> None:
        """Redacting a redacted value changes nothing."""
        once = redact_secrets(planted[0])
        assert redact_secrets(once) == once

    @settings(max_examples=200, deadline=None)
    @given(
        st.recursive(
            scalars,
            lambda c: (
                st.lists(c, max_size=4)
                | st.dictionaries(filler.filter(lambda k: not redact_secrets.is_secret_key(k)), c)
            ),
        )
    )
    def test_values_without_secrets_come_back_equal(self, value: Any) -> None:
        """Random data with no secret-looking text or keys comes back equal and unmutated."""
        before = copy.deepcopy(value)
        assert redact_secrets(value) == value
        assert value == before


# -- whatever dumps renders as data is looked into (issue 12, defect 6) -----------------


class Holder:
    """An object whose repr shows what it holds (dumps renders it through repr)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Holder({self.value!r})"


class Hostile:
    """An object that dumps to data while its ==, truth value, hash and str raise."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def model_dump(self) -> dict[str, Any]:
        return {"value": self.value}

    def __eq__(self, other: object) -> bool:
        raise ValueError("== is ambiguous")

    def __bool__(self) -> bool:
        raise ValueError("truth value is ambiguous")

    def __hash__(self) -> int:
        raise TypeError("unhashable")

    def __str__(self) -> str:
        raise RuntimeError("no text")


class OldModel:
    """A pydantic-v1-style object: it says what it holds through ``dict()``."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def dict(self) -> dict[str, Any]:
        return {"value": self.value}


@dataclasses.dataclass(frozen=True)
class Box:
    """A dataclass field holding a value."""

    value: Any


class Secrets(enum.Enum):
    """An Enum member whose value is a secret (dumps shows its value)."""

    KEY = OPENAI


class Pairs(Mapping[str, Any]):
    """A Mapping that is not a dict."""

    def __init__(self, **items: Any) -> None:
        self._items = items

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except Exception:
        return False
    return True


WRAPPERS: dict[str, Callable[[Any], Any]] = {
    "dict": lambda v: {"k": v},
    "list": lambda v: [1, v],
    "tuple": lambda v: (v,),
    "UserDict": lambda v: UserDict(k=v),
    "MappingProxyType": lambda v: MappingProxyType({"k": v}),
    "ChainMap": lambda v: ChainMap({"a": 1}, {"k": v}),
    "OrderedDict": lambda v: OrderedDict(k=v),
    "Mapping": lambda v: Pairs(k=v),
    "deque": lambda v: deque([v]),
    "frozenset": lambda v: frozenset([v]) if _hashable(v) else (v,),
    "set": lambda v: {v} if _hashable(v) else [v],
    "dataclass": Box,
    "model_dump": Hostile,
    "dict()": OldModel,
    "repr": Holder,
}

LEAVES: dict[str, Any] = {
    "text": f"my key is {OPENAI}",
    "secret key": {"api_key": "plain-looking"},
    "enum": Secrets.KEY,
    "bytes": f"Bearer {OPENAI}".encode(),
}


def rendered_text(value: Any) -> str:
    """What dumps writes for ``value``, with every base64 bytes record decoded into it."""
    text = dumps(value)
    decoded = [
        base64.b64decode(b64).decode("latin-1")
        for b64 in re.findall(r'"base64":"([A-Za-z0-9+/=]*)"', text)
    ]
    return "\n".join([text, *decoded])


class TestWhatDumpsRenders:
    """Every value dumps renders as data or text is redacted in what dumps renders."""

    @pytest.mark.parametrize("kind", ["UserDict", "MappingProxyType", "ChainMap", "Mapping"])
    def test_non_dict_mappings_are_looked_into(self, kind: str) -> None:
        """A Mapping that is not a dict has its secret keys and values masked."""
        value = WRAPPERS[kind]({"password": "hunter2", "q": OPENAI})
        out = redact_secrets(value)
        assert "hunter2" in dumps(value)  # dumps renders it as data
        assert json.loads(dumps(out)) == {"k": {"password": M, "q": M}} | (
            {"a": 1} if kind == "ChainMap" else {}
        )

    def test_deque_enum_and_dict_method_are_looked_into(self) -> None:
        """deque items, an Enum member's value and an object's dict() are masked."""
        out = redact_secrets([deque([OPENAI]), Secrets.KEY, OldModel({"token": "t"})])
        assert json.loads(dumps(out)) == [[M], M, {"value": {"token": M}}]

    def test_object_shown_by_repr_has_its_repr_masked(self) -> None:
        """An object dumps shows by repr comes back as that record, its secret masked."""
        out = redact_secrets({"h": Holder(OPENAI)})
        assert out["h"] == {
            "type": "not_serializable",
            "class": f"{__name__}.Holder",
            "repr": f"Holder('{M}')",
        }
        clean = Holder("nothing to hide")
        assert redact_secrets([clean])[0] is clean

    def test_clean_objects_are_kept_by_reference(self) -> None:
        """Mappings are copied, but objects whose rendering holds no secret are kept."""
        hostile, box = Hostile("fine"), Box("fine")
        out = redact_secrets([hostile, box, Secrets.KEY.name, UserDict(a=1)])
        assert out[0] is hostile and out[1] is box
        assert out[3] == {"a": 1} and type(out[3]) is dict

    @settings(max_examples=150, deadline=None)
    @given(
        leaf=st.sampled_from(sorted(LEAVES)),
        kinds=st.lists(st.sampled_from(sorted(WRAPPERS)), max_size=6),
    )
    def test_no_secret_in_what_dumps_renders(self, leaf: str, kinds: list[str]) -> None:
        """A secret under any mix of containers, mappings and objects is never rendered."""
        # A repr is text: a value is masked there only if it looks like a secret itself.
        assume(not (leaf == "secret key" and "repr" in kinds))
        value = LEAVES[leaf]
        for kind in kinds:
            value = WRAPPERS[kind](value)
        secret = "plain-looking" if leaf == "secret key" else OPENAI
        if "repr" not in kinds:  # (a repr may not show what it holds)
            assert secret in rendered_text(value)
        assert secret not in rendered_text(redact_secrets(value))
