"""Secret redaction: :class:`SecretRedactor` returns a copy of a value with its secrets masked.

This module's one responsibility is masking credentials in the values a tracer is about to
stream or store (inputs, outputs, metadata, streamed chunks), before they leave the
process. :data:`redact_secrets` is a ready-made instance with the defaults below; a
:class:`SecretRedactor` with other keys, patterns or mask is built the same way. Both are
plain callables, ``value -> value``, that never change their argument.

**Secret keys.** A dict entry whose key names a secret has its value replaced by the mask
(``None`` values are kept: they reveal nothing and show that a setting was unset). A key
names a secret when, with everything but ASCII letters and digits removed and lower-cased
(``X-Api-Key`` -> ``xapikey``, ``AWS_SECRET_ACCESS_KEY`` -> ``awssecretaccesskey``), it ENDS
with one of :data:`DEFAULT_SECRET_KEYS` written the same way, unless its words (split at
separators and camelCase humps) end with one of :data:`DEFAULT_SAFE_KEYS`:

=====================  ===========================================================
masked                 ``password``, ``db_passwd``, ``passphrase``, ``client_secret``,
                       ``secret_key``, ``openai_api_key``, ``x-api-key``, ``apiKey``,
                       ``private_key``, ``AWS_SECRET_ACCESS_KEY``, ``token``,
                       ``access_token``, ``refreshToken``, ``Authorization``,
                       ``proxy-authorization``, ``basic_auth``, ``Cookie``,
                       ``Set-Cookie``, ``credentials``, ``session``, ``jwt``
not masked             ``max_tokens``, ``tokens``, ``token_count``, ``total_tokens``,
                       ``time_to_first_token``, ``cost_per_token``, ``eos_token``,
                       ``next_token``, ``session_id``, ``api_key_id``,
                       ``aws_access_key_id``, ``secret_name``, ``password_hash``, ``key``
=====================  ===========================================================

Matching the end of the key, not any substring, is what keeps counters like
``token_count`` and settings like ``max_tokens`` readable; the safe list covers the keys
that do end in ``token`` without holding one (tokenizer special tokens, per-token prices,
timings). ``session_id`` is left alone on purpose: in LLM tracing it names a conversation.

**Secret values.** Every string, wherever it sits (dict values, list and tuple items, set
elements, dict keys, inside longer text) has the parts that match
:data:`DEFAULT_PATTERNS` replaced by the mask: ``Bearer <token>`` and ``Basic <base64>``
credentials (the scheme is kept), OpenAI (``sk-``, ``sk-proj-``) and Anthropic
(``sk-ant-``) API keys, AWS access key ids (``AKIA``/``ASIA``), GitHub (``ghp_``, ...,
``github_pat_``) and Slack (``xoxb-``, ``xoxp-``, ...) tokens, JWTs, PEM private key blocks
(to the end of the text if the block is cut short) and the password in a URL's
``user:password@`` part. All patterns run as one compiled regular expression, so a string
with no secret costs one scan.

**What is copied.** Dicts and every other ``Mapping`` (``UserDict``, ``MappingProxyType``,
``ChainMap``: all become plain dicts), lists and deques (they become plain lists), tuples
(their type is kept, namedtuples included), sets and frozensets are copied, recursively and
without recursion limit; shared and cyclic references are kept as they are, except that
a cycle closing through a tuple or frozenset gets the mask where it closes. A
:class:`~logstream._patches.RunLogPatch` or :class:`~logstream._patches.RunLog` is copied
with its ops and state redacted. Strings are new only when something was masked.
**Objects** are looked into as :func:`~logstream.dumps` renders them, so what it writes
holds no secret: one that can say what it holds (``model_dump()``, as LangChain messages
and pydantic models do, ``dict()``, dataclasses, an ``Enum`` member's value) and holds no
secret is returned as it is, by reference; one that holds a secret is replaced by its
data, redacted. Any other object is rendered by ``dumps`` through its ``repr``: when that
text holds a secret (by value pattern only: a repr is text, its keys are not known), the
object is replaced by the ``{"type": "not_serializable", "class": ..., "repr": ...}``
record ``dumps`` would write, with the secret masked. ``inspect_objects=False`` turns
objects off. Bytes are masked as Latin-1 text (and come back as ``bytes``) when they hold
a secret; numbers, UUIDs, dates and times are returned as they are. Whether anything was
masked is tracked while copying, never by comparing values, whose ``==`` may raise.

Example:
    >>> redact_secrets({"api_key": "abc", "max_tokens": 5, "q": "use sk-" + "a" * 24})
    {'api_key': '[REDACTED]', 'max_tokens': 5, 'q': 'use [REDACTED]'}
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Optional, Union

from ._errors import RedactionConfigError
from ._patches import RunLog, RunLogPatch
from ._values import (
    FROZENSET,
    LEAF_TYPES,
    LIST,
    MAPPING,
    MISSING,
    SET,
    TUPLE,
    Frame,
    Walk,
    class_name,
    container_frame,
    dumped,
    is_walked_as_mapping,
    mapping_frame,
    safe_repr,
    unique_key,
)

__all__ = ["SecretRedactor", "redact_secrets"]

DEFAULT_MASK = "[REDACTED]"
"""What a secret is replaced by."""

# Base64 after "Basic ": 8+ characters with a digit, "+", "/" or "=", or an upper-case
# letter after the first character, so that prose ("basic understanding") is left alone.
_BASIC_CREDENTIALS = (
    r"((?=[A-Za-z0-9+/]*?(?:[0-9+/=]|[A-Za-z0-9+/][A-Z]))[A-Za-z0-9+/]{8,}={0,2})"
    r"(?![A-Za-z0-9+/=])"
)

DEFAULT_SECRET_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "passwords",
    "passphrase",
    "secret",
    "secrets",
    "secret_key",
    "api_key",
    "api_keys",
    "private_key",
    "access_key",
    "token",
    "authorization",
    "auth",
    "cookie",
    "cookies",
    "credential",
    "credentials",
    "session",
    "jwt",
)
"""Key endings that name a secret (compared with separators removed, case-insensitively)."""

DEFAULT_SAFE_KEYS: tuple[str, ...] = (
    "max_token",
    "min_token",
    "num_token",
    "total_token",
    "per_token",
    "first_token",
    "last_token",
    "next_token",
    "stop_token",
    "special_token",
    "eos_token",
    "bos_token",
    "pad_token",
    "unk_token",
    "sep_token",
    "cls_token",
    "mask_token",
)
"""Word endings of keys that are never secret, although they end like one (``eos_token``)."""

# Each pattern starts with one literal character and checks the character before it with a
# lookbehind (instead of a leading \b): when every pattern starts with a literal, the regex
# engine skips to the positions holding one of those characters, which makes scanning plain
# prose about four times faster. That is why "Bearer" and "Basic" come in two cases.
DEFAULT_PATTERNS: Mapping[str, str] = MappingProxyType(
    {
        "private_key_pem": (
            r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY[A-Z ]{0,10}-----"
            r"(?:[\s\S]*?-----END[A-Z0-9 ]{0,40}PRIVATE KEY[A-Z ]{0,10}-----|[\s\S]*)"
        ),
        "bearer": r"B(?<![A-Za-z0-9_]B)(?i:earer)[ \t]+([A-Za-z0-9._~+/-]{16,}=*)",
        "bearer_lowercase": r"b(?<![A-Za-z0-9_]b)(?i:earer)[ \t]+([A-Za-z0-9._~+/-]{16,}=*)",
        "basic": r"B(?<![A-Za-z0-9_]B)(?i:asic)[ \t]+" + _BASIC_CREDENTIALS,
        "basic_lowercase": r"b(?<![A-Za-z0-9_]b)(?i:asic)[ \t]+" + _BASIC_CREDENTIALS,
        "url_credentials": r"://[^\s/?#@:]{0,256}:([^\s/?#]{1,256})@",
        "anthropic_api_key": r"s(?<![A-Za-z0-9]s)k-ant-[A-Za-z0-9_-]{20,}",
        "openai_api_key": r"s(?<![A-Za-z0-9]s)k-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
        "aws_access_key_id": r"A(?<![A-Za-z0-9]A)(?:KIA|SIA)[A-Z0-9]{16}(?![A-Za-z0-9])",
        "github_token": (
            r"g(?<![A-Za-z0-9]g)(?:h[pousr]_[A-Za-z0-9]{30,}|ithub_pat_[A-Za-z0-9_]{30,})"
        ),
        "slack_token": r"x(?<![A-Za-z0-9]x)ox[abposr]-[A-Za-z0-9-]{10,}",
        "jwt": r"e(?<![A-Za-z0-9_-]e)yJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
    }
)
"""The value patterns, by name. Where a pattern has a group, only group 1 is masked."""

PatternSpec = Union[str, "re.Pattern[str]"]
"""A value pattern: regular expression source, or a compiled pattern (its flags are kept)."""

_KEY_CACHE_SIZE = 4096
_KEY_CACHE_MAX_LEN = 256
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_LEADING_FLAGS = re.compile(r"\A\(\?([aiLmsux]+)\)")
_FLAG_LETTERS = ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"), (re.VERBOSE, "x"))


class SecretRedactor:
    """A callable that returns a copy of a value with its secrets masked.

    Args:
        keys: Key endings that name a secret, replacing :data:`DEFAULT_SECRET_KEYS`.
            Each is compared with separators removed, case-insensitively, so
            ``"api_key"``, ``"apiKey"`` and ``"API-KEY"`` are the same ending.
        extra_keys: Key endings added to ``keys``.
        safe_keys: Word endings of keys that are never secret, replacing
            :data:`DEFAULT_SAFE_KEYS` (``()`` for none). Compared word by word, so
            ``"per_token"`` spares ``cost_per_token`` but not ``super_token``.
        patterns: Value patterns, replacing :data:`DEFAULT_PATTERNS`: regular expression
            sources or compiled patterns (a mapping's values are used). Where a pattern
            has groups, only group 1 is masked, else the whole match. Patterns run as one
            combined expression, so numbered backreferences are not supported and group
            names must be unique across patterns. Scanning is fastest when every pattern
            starts with a literal character, as the defaults do.
        extra_patterns: Value patterns added to ``patterns``.
        mask: What secrets are replaced by.
        inspect_objects: Look into objects that are not containers, as ``dumps``
            renders them (``model_dump()``, ``dict()``, dataclasses, ``Enum`` values,
            else their ``repr``): an object whose rendering holds no secret is returned
            as it is; one whose rendering holds a secret is replaced by that rendering,
            redacted. ``False`` leaves every such object alone.

    Raises:
        RedactionConfigError: A bare string was given where a collection is expected, a
            key has no letters or digits, a pattern does not compile, or the mask is not
            a string.

    Example:
        >>> redact = SecretRedactor(extra_keys=["pin"], mask="***")
        >>> redact({"user": {"PIN": 1234, "name": "ann"}, "auth": ("u", "p")})
        {'user': {'PIN': '***', 'name': 'ann'}, 'auth': '***'}
    """

    def __init__(
        self,
        *,
        keys: Optional[Iterable[str]] = None,
        extra_keys: Iterable[str] = (),
        safe_keys: Optional[Iterable[str]] = None,
        patterns: Union[Iterable[PatternSpec], Mapping[str, PatternSpec], None] = None,
        extra_patterns: Union[Iterable[PatternSpec], Mapping[str, PatternSpec]] = (),
        mask: str = DEFAULT_MASK,
        inspect_objects: bool = True,
    ) -> None:
        """Compile the key endings and value patterns."""
        if not isinstance(mask, str):
            msg = f"SecretRedactor mask must be a str, got {type(mask).__name__}"
            raise RedactionConfigError(msg)
        self._mask = mask
        secret_keys = _strings("keys", DEFAULT_SECRET_KEYS if keys is None else keys)
        secret_keys += _strings("extra_keys", extra_keys)
        safe = _strings("safe_keys", DEFAULT_SAFE_KEYS if safe_keys is None else safe_keys)
        self._keys = secret_keys
        self._safe_keys = safe
        self._key_endings = tuple({_compact_phrase("keys", k): None for k in secret_keys})
        self._safe_endings = tuple({_words_phrase("safe_keys", k): None for k in safe})
        chosen = _patterns("patterns", DEFAULT_PATTERNS if patterns is None else patterns)
        chosen += _patterns("extra_patterns", extra_patterns)
        self._patterns = tuple(chosen)
        self._regex = _combine(chosen)
        self._search = self._regex.search
        self._sub = self._regex.sub
        self._key_cache: dict[str, tuple[bool, str]] = {}
        self._inspect_objects = inspect_objects

    @property
    def mask(self) -> str:
        """What secrets are replaced by."""
        return self._mask

    @property
    def keys(self) -> tuple[str, ...]:
        """The key endings that name a secret, as given."""
        return self._keys

    @property
    def safe_keys(self) -> tuple[str, ...]:
        """The word endings of keys that are never secret, as given."""
        return self._safe_keys

    @property
    def patterns(self) -> tuple[re.Pattern[str], ...]:
        """The value patterns, compiled one by one."""
        return self._patterns

    def __repr__(self) -> str:
        """Show the mask and how many keys and patterns are configured."""
        return (
            f"SecretRedactor(mask={self._mask!r}, keys={len(self._keys)}, "
            f"safe_keys={len(self._safe_keys)}, patterns={len(self._patterns)})"
        )

    def __call__(self, value: Any) -> Any:
        """Return a copy of ``value`` with its secrets masked; ``value`` is not changed.

        Args:
            value: Any value.

        Returns:
            A value of the same shape: see the module documentation for what is copied,
            what is masked and what is passed through.

        Example:
            >>> redact_secrets(["Authorization: Bearer abcdefghijklmnop1234", ("ok",)])
            ['Authorization: Bearer [REDACTED]', ('ok',)]
        """
        t = type(value)
        if t is str:
            return self.redact_text(value)
        if value is None or t is int or t is float or t is bool:
            return value
        return _Redaction(self).run(value)  # an explicit stack: depth is limited by memory

    def redact_text(self, text: str) -> str:
        """Return ``text`` with the parts that match a value pattern masked.

        Args:
            text: The text.

        Returns:
            ``text`` itself when nothing matched, else a new string.

        Example:
            >>> redact_secrets.redact_text("postgres://app:hunter2@db:5432/prod")
            'postgres://app:[REDACTED]@db:5432/prod'
        """
        if self._search(text) is None:
            return text
        return self._sub(self._replace, text)

    def is_secret_key(self, key: str) -> bool:
        """Return whether a dict entry under ``key`` holds a secret (see the module docs).

        Args:
            key: The key.

        Returns:
            Whether the key ends like a secret key and not like a safe key.

        Example:
            >>> redact_secrets.is_secret_key("OPENAI_API_KEY")
            True
            >>> redact_secrets.is_secret_key("max_tokens")
            False
        """
        compact = _NOT_ALNUM.sub("", key.lower())
        if not compact.endswith(self._key_endings):
            return False
        if not self._safe_endings:
            return True
        words = tuple(w.lower() for w in _WORDS.findall(key))
        return not any(words[-len(e) :] == e for e in self._safe_endings)

    def _replace(self, match: re.Match[str]) -> str:
        # Which pattern matched: the first one that matches here, as the alternation chose.
        text = match.string
        whole_start, whole_end = match.span()
        for pattern in self._patterns:
            own = pattern.match(text, whole_start)
            if own is None:
                continue
            if own.end() != whole_end or not pattern.groups:
                break
            start, end = own.span(1)
            if start < 0:
                break
            return text[whole_start:start] + self._mask + text[end:whole_end]
        return self._mask

    def _key(self, key: str) -> tuple[bool, str]:
        """Return whether ``key`` names a secret, and the key with its text redacted."""
        cached = self._key_cache.get(key)
        if cached is not None:
            return cached
        answer = (self.is_secret_key(key), self.redact_text(key))
        if len(key) <= _KEY_CACHE_MAX_LEN:
            if len(self._key_cache) >= _KEY_CACHE_SIZE:
                self._key_cache.clear()
            self._key_cache[key] = answer
        return answer

    def _redact_object(self, value: Any) -> Any:
        """Return ``value`` if what :func:`~logstream.dumps` shows of it holds no secret.

        Else what it shows, redacted: an ``Enum`` member's value; the data a dataclass,
        ``model_dump()`` or ``dict()`` gives; for any other object, the
        ``not_serializable`` record of its ``repr`` with the secret parts masked.
        """
        try:
            if isinstance(value, enum.Enum):
                data = value.value
            elif dataclasses.is_dataclass(value) and not isinstance(value, type):
                data = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            else:
                data = dumped(value)
                if data is MISSING:
                    return self._redact_repr(value)
        except Exception:  # dumps shows its repr then
            return self._redact_repr(value)
        redacted, changed = self._walk(data)
        return redacted if changed else value

    def _redact_bytes(self, value: Any) -> Any:
        """Return ``value``, or its bytes with the secret parts masked (as Latin-1 text)."""
        try:
            text = bytes(value).decode("latin-1")
        except Exception:
            return value
        masked = self.redact_text(text)
        if masked is text:
            return value
        return masked.encode("latin-1", "backslashreplace")

    def _redact_repr(self, value: Any) -> Any:
        """Return ``value``, or the record ``dumps`` shows of it if its repr holds a secret."""
        if getattr(type(value), "__repr__", None) is _OBJECT_REPR:  # "<mod.Cls object at 0x..>"
            return value
        text = safe_repr(value)
        masked = self.redact_text(text)
        if masked is text:
            return value
        return {"type": "not_serializable", "class": class_name(value), "repr": masked}

    def _walk(self, root: Any) -> tuple[Any, bool]:
        """Copy ``root`` redacted; also return whether anything was masked or replaced.

        Whether something changed is tracked as the copy is made, never by comparing
        values (whose ``==`` may raise or lie).
        """
        walk = _Redaction(self)
        result = walk.run(root)
        # A root that is not walked into changed if it came back as another object.
        return result, walk.changed or (result is not root and root is not walk.root)


_DICT, _LIST, _SET, _TUPLE, _FROZENSET = MAPPING, LIST, SET, TUPLE, FROZENSET
_PATCH, _LOG = 5, 6  # a RunLogPatch, a RunLog: copied with their ops and state
_PENDING = object()  # an immutable container met again before it is built: a cycle


class _Frame(Frame):
    """A container being copied: where its items go, and how to build the copy."""

    __slots__ = ("early", "out", "slot")

    def __init__(self, kind: int, source: Any, items: Iterator[Any]) -> None:
        self.kind = kind
        self.source = source
        self.items = items
        self.held = ()  # depth is not kept: a copy does not need it
        self.slot: Any = None
        out: Any = {} if kind == _DICT else set() if kind == _SET else []
        self.out = out
        # Mutable copies exist before their items do, so cycles come back to them.
        self.early = out if kind < _TUPLE else _PENDING

    def place(self, value: Any) -> None:
        """Add one redacted item to the copy."""
        kind = self.kind
        if kind == _DICT:
            self.out[self.slot] = value
        elif kind == _SET:
            try:
                self.out.add(value)
            except TypeError:  # an element replaced by its (unhashable) redacted data
                self.out.add(DEFAULT_MASK)
        else:
            self.out.append(value)

    def build(self) -> Any:
        """Return the finished copy."""
        kind = self.kind
        out = self.out
        if kind in (_DICT, _LIST, _SET):
            return out
        source = self.source
        if kind == _PATCH:
            return RunLogPatch.from_ops(out[0])
        if kind == _LOG:
            return RunLog(*out[0], state=out[1])
        base = tuple if kind == _TUPLE else frozenset
        cls = type(source)
        try:
            if cls is base:
                return base(out)
            if kind == _TUPLE and hasattr(cls, "_make"):  # a namedtuple
                return cls._make(out)
            return cls(out)
        except Exception:
            if kind == _TUPLE:
                return tuple(out)
            # an element replaced by its (unhashable) redacted data: masked whole
            return frozenset(x if _is_hashable(x) else DEFAULT_MASK for x in out)


class _Redaction(Walk[_Frame]):
    """One walk of :class:`SecretRedactor`: copies a value, masking as it goes.

    Its memo is the walk's :attr:`~logstream._values.Walk.open` map: an id maps to the
    frame of a container being copied (met again, it is a cycle) or, once the container
    is done, to its copy (met again, it is shared: the copy is shared too).
    """

    __slots__ = ("changed", "redactor", "root")

    def __init__(self, redactor: SecretRedactor) -> None:
        self.open: dict[int, Any] = {}
        self.stack: list[_Frame] = []
        self.changed = False  # whether anything inside the root was masked or replaced
        self.redactor = redactor
        self.root: Any = None  # the root, once its copy is built

    def visit(self, frame: _Frame, item: Any) -> Optional[_Frame]:
        """Redact one item (a mapping's key too) into the copy, or return its frame."""
        if frame.kind == _DICT:
            redactor = self.redactor
            out = frame.out
            key, item = item
            if type(key) is str:
                secret, new_key = redactor._key(key)
                if new_key == key:
                    new_key = key
            elif isinstance(key, str):
                plain_key = str.__str__(key)
                secret = redactor.is_secret_key(plain_key)
                new_key = redactor.redact_text(plain_key)
                new_key = key if new_key == plain_key else new_key
            else:
                secret, new_key = False, key
            if new_key is not key:
                self.changed = True
                if new_key in out:  # a masked key ran into another
                    new_key = unique_key(new_key, out)
            if secret and item is not None:
                out[new_key] = redactor._mask
                self.changed = True
                return None
            t = type(item)
            if t is str:  # the usual leaves, without a call
                if redactor._search(item) is None:
                    out[new_key] = item
                else:
                    out[new_key] = redactor.redact_text(item)
                    self.changed = True
                return None
            if item is None or t is int or t is float or t is bool:
                out[new_key] = item
                return None
            frame.slot = new_key
        elif frame.kind == _LIST:
            t = type(item)
            if t is str:  # the usual leaves, without a call
                redactor = self.redactor
                if redactor._search(item) is None:
                    frame.out.append(item)
                else:
                    frame.out.append(redactor.redact_text(item))
                    self.changed = True
                return None
            if item is None or t is int or t is float or t is bool:
                frame.out.append(item)
                return None
        child = self.open_value(item)
        if type(child) is _Frame:
            return child
        if child is _PENDING:
            self.changed = True
            child = self.redactor._mask
        elif child is not item and id(item) not in self.open:
            self.changed = True  # not a container's copy: something was masked
        frame.place(child)
        return None

    def leave(self, frame: _Frame) -> Any:
        """Build the copy of a finished container and hand it to the one around it."""
        built = frame.build()
        self.open[id(frame.source)] = built
        if self.stack:
            self.stack[-1].place(built)
        else:
            self.root = frame.source
        return built

    def open_value(self, value: Any) -> Any:
        """Return ``value`` redacted, or the frame that copies it."""
        t = type(value)
        redactor = self.redactor
        if t is str:
            return redactor.redact_text(value)
        if value is None or t is int or t is float or t is bool:
            return value
        done = self.open.get(id(value), MISSING)
        if done is not MISSING:
            return done.early if type(done) is _Frame else done
        try:
            frame = container_frame(value, _Frame)
            if frame is None:
                if t is RunLog:
                    frame = _Frame(_LOG, value, iter([value.ops, value.state]))
                elif t is RunLogPatch:
                    frame = _Frame(_PATCH, value, iter([value.ops]))
                elif is_walked_as_mapping(value):
                    frame = mapping_frame(value, _Frame)
        except Exception:  # e.g. a mapping whose items() raises: dumps shows its repr
            return redactor._redact_repr(value) if redactor._inspect_objects else value
        if frame is not None:
            return frame
        if isinstance(value, str):
            redacted = redactor.redact_text(value)
            return value if redacted is value else redacted
        if isinstance(value, _LEAVES):  # numbers, ids, times: dumps shows no text
            return value
        if isinstance(value, (bytes, bytearray, memoryview)):
            return redactor._redact_bytes(value)
        if redactor._inspect_objects:
            return redactor._redact_object(value)
        return value

    enter = open_value  # the root: its frame, or the root redacted


def _is_hashable(value: Any) -> bool:
    try:
        hash(value)
    except Exception:
        return False
    return True


_OBJECT_REPR: Any = object.__repr__
_LEAVES: tuple[type, ...] = (int, float, complex, *LEAF_TYPES)


def _strings(name: str, values: Any) -> tuple[str, ...]:
    if isinstance(values, (str, bytes)):
        msg = f"SecretRedactor {name} must be a collection of strings, not a bare {values!r}"
        raise RedactionConfigError(msg)
    try:
        items = tuple(values)
    except TypeError:
        msg = f"SecretRedactor {name} must be a collection of strings, got {values!r}"
        raise RedactionConfigError(msg) from None
    bad = [v for v in items if not isinstance(v, str)]
    if bad:
        msg = f"SecretRedactor {name} must hold strings only, got {bad[0]!r}"
        raise RedactionConfigError(msg)
    return items


def _compact_phrase(name: str, key: str) -> str:
    compact = _NOT_ALNUM.sub("", key.lower())
    if not compact:
        msg = f"SecretRedactor {name} entry {key!r} has no ASCII letters or digits"
        raise RedactionConfigError(msg)
    return compact


def _words_phrase(name: str, key: str) -> tuple[str, ...]:
    words = tuple(w.lower() for w in _WORDS.findall(key))
    if not words:
        msg = f"SecretRedactor {name} entry {key!r} has no ASCII letters or digits"
        raise RedactionConfigError(msg)
    return words


def _patterns(name: str, values: Any) -> list[re.Pattern[str]]:
    if isinstance(values, Mapping):
        values = list(values.values())
    if isinstance(values, (str, bytes, re.Pattern)):
        msg = f"SecretRedactor {name} must be a collection of patterns, not a bare {values!r}"
        raise RedactionConfigError(msg)
    try:
        items = list(values)
    except TypeError:
        msg = f"SecretRedactor {name} must be a collection of patterns, got {values!r}"
        raise RedactionConfigError(msg) from None
    compiled = []
    for item in items:
        if isinstance(item, re.Pattern) and isinstance(item.pattern, str):
            compiled.append(item)
            continue
        if not isinstance(item, str):
            msg = f"SecretRedactor {name} must hold str or compiled str patterns, got {item!r}"
            raise RedactionConfigError(msg)
        try:
            compiled.append(re.compile(item))
        except re.error as exc:
            msg = f"SecretRedactor {name} entry {item!r} does not compile: {exc}"
            raise RedactionConfigError(msg) from None
    return compiled


def _combine(patterns: list[re.Pattern[str]]) -> re.Pattern[str]:
    """Return one expression that matches wherever any of ``patterns`` matches."""
    branches = []
    for pattern in patterns:
        source = pattern.pattern
        flags = "".join(letter for flag, letter in _FLAG_LETTERS if pattern.flags & flag)
        if pattern.flags & re.ASCII:
            flags += "a"
        leading = _LEADING_FLAGS.match(source)
        if leading:
            source = source[leading.end() :]
        branches.append(f"(?{flags}:{source})" if flags else f"(?:{source})")
    if not branches:
        return re.compile(r"(?!)")
    try:
        return re.compile("|".join(branches))
    except re.error as exc:
        msg = f"SecretRedactor patterns do not combine into one expression: {exc}"
        raise RedactionConfigError(msg) from None


redact_secrets = SecretRedactor()
"""The default :class:`SecretRedactor`: default keys, safe keys, patterns and mask.

Example:
    >>> redact_secrets({"headers": {"Authorization": "Basic dXNlcjpwYXNz"}, "n": 1})
    {'headers': {'Authorization': '[REDACTED]'}, 'n': 1}
"""
