"""One redaction rule for everything the bridge writes down: capture files, logs, the audit trail.

A secret value is replaced by the fixed marker "[redacted]", whole: never a prefix, a length or a
hash, which would help someone guessing it. What counts as secret:

- headers: Authorization, Proxy-Authorization, Cookie, Set-Cookie, the configured API-key header,
  the iconik webhook secret (X-Bridge-Secret), and any `X-…` header whose name says secret, token,
  password, signature, session, credential, auth or api-key;
- names (JSON keys at any depth, query parameters, form fields): anything containing password,
  passwd, secret, token or credential, and `code`, `assertion`, `client_assertion`, `api_key`,
  `apikey`; a URN-qualified key counts by its last segment
  (`urn:ietf:params:scim:schemas:core:2.0:User:password`), in any case;
- a PATCH operation naming a secret attribute in `path` ("password", "PASSWORD", the URN form):
  its `value`, at any depth (so inside a Bulk operation's PATCH data too);
- a SCIM filter comparing a secret attribute (`password eq "…"`): the compared value, in a
  `filter` query parameter or a `filter` JSON key;
- free text (log lines): `name=value` pairs with a secret name, `"name": "value"` pairs, header
  lines, `Bearer`/`Basic` credentials, URL query strings (encoded filters included) and the
  password in a URL's user info (`redis://user:password@host`, the store URL in the banner).

This module imports nothing from the bridge, so every layer may use it.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any
from urllib.parse import quote, unquote_plus

REDACTED = "[redacted]"

SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-bridge-secret"}
)
_HEADER_WORDS = ("secret", "token", "password", "signature", "session", "credential", "auth", "api-key", "apikey")
_NAME_WORDS = ("password", "passwd", "secret", "token", "credential")
_EXACT_NAMES = frozenset({"code", "assertion", "client_assertion", "api_key", "apikey", "authorization"})


@lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """True for a key, parameter or attribute path that holds a secret (see the module doc)."""
    last = name.lower().rsplit(":", 1)[-1].rsplit(".", 1)[-1]
    return last in _EXACT_NAMES or any(word in last for word in _NAME_WORDS)


def is_secret_header(name: str, extra: frozenset[str] | set[str] = frozenset()) -> bool:
    lowered = name.lower()
    if lowered in SECRET_HEADERS or lowered in extra:
        return True
    return lowered.startswith("x-") and any(word in lowered for word in _HEADER_WORDS)


def redact_headers(headers: dict[str, str], extra: frozenset[str] | set[str] = frozenset()) -> dict[str, str]:
    return {name: (REDACTED if is_secret_header(name, extra) else value) for name, value in headers.items()}


# A filter comparison whose attribute path names a secret: `password eq "x"`, `…:User:password ne x`.
_FILTER_SECRET = re.compile(
    r"""(?P<attr>[\w:.$\-]*(?:password|passwd|secret|token|credential)[\w.$\-]*)
        (?P<op>\s+(?:eq|ne|co|sw|ew|gt|ge|lt|le)\s+)
        (?P<value>"(?:[^"\\]|\\.)*"?|[^\s()\]]+)""",
    re.IGNORECASE | re.VERBOSE,
)


def redact_filter(text: str) -> str:
    """A SCIM filter with every value compared to a secret attribute replaced."""
    return _FILTER_SECRET.sub(lambda m: f'{m["attr"]}{m["op"]}"{REDACTED}"', text)


def redact_json(value: Any) -> Any:
    """A copy of a JSON value without secrets: secret keys, PATCH values aimed at a secret path,
    and secret comparisons in `filter` strings, at any depth."""
    if isinstance(value, dict):
        secret_path = any(
            k.lower() == "path" and isinstance(v, str) and is_secret_name(v.split("[", 1)[0]) for k, v in value.items()
        )
        result: dict[str, Any] = {}
        for key, item in value.items():
            lowered = key.lower() if isinstance(key, str) else ""
            if is_secret_name(lowered) or (secret_path and lowered == "value"):
                result[key] = REDACTED
            elif lowered == "filter" and isinstance(item, str):
                result[key] = redact_filter(item)
            else:
                result[key] = redact_json(item)
        return result
    if isinstance(value, list):
        return [redact_json(item) for item in value]
    return value


def redact_query(query: str) -> str:
    """A query string (or form body) with secret parameters' values replaced and secret
    comparisons in `filter` values replaced; every other byte is kept as it was sent."""
    if not query:
        return query
    parts = []
    for part in query.split("&"):
        raw_name, equals, raw_value = part.partition("=")
        name = unquote_plus(raw_name)
        if is_secret_name(name) and equals:
            raw_value = REDACTED
        elif name.lower() == "filter":
            value = unquote_plus(raw_value)
            redacted = redact_filter(value)
            if redacted != value:
                raw_value = quote(redacted, safe="[]")
        parts.append(f"{raw_name}{equals}{raw_value}")
    return "&".join(parts)


_NAMES = (
    r"[\w:.\-]*(?:password|passwd|secret|token|credential)[\w.\-]*"
    r"|code|assertion|client_assertion|api_?key|authorization"
)
# "password": "…" and 'password': '…' (JSON and Python reprs)
_QUOTED_PAIR = re.compile(
    rf"""(?P<q>["'])(?P<name>{_NAMES})(?P=q)(?P<sep>\s*:\s*)(?P<v>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""", re.I
)
# header lines and header reprs: `Authorization: …`, `'cookie': '…'`, `X-Bridge-Secret=…`
_HEADER = re.compile(
    r"""(?P<name>\b(?:proxy-)?authorization|\bset-cookie|\bcookie
        |\bx-[\w\-]*(?:secret|token|password|signature|session|credential|auth|api-?key)[\w\-]*)
        (?P<q>["']?)(?P<sep>\s*[:=]\s*)(?P<v>"[^"]*"|'[^']*'|[^\r\n"'}]+)""",
    re.I | re.X,
)
# credentials after an auth scheme, wherever they appear (a lower-case word after its first letter is prose)
_SCHEME = re.compile(r"\b((?i:Bearer|Basic|Token))\s+[\w.~+/=\-](?=[a-z]*[A-Z0-9_.~+/=\-])[\w.~+/=\-]{5,}")
# name=value in query strings, form bodies and key=value log fields
# (a value already redacted is left alone: redacting a line twice must not leave a stray "]")
_PAIR = re.compile(rf"(?P<pre>(?:^|[?&;\s,(\[{{]))(?P<name>{_NAMES})=(?!\[redacted\])(?P<v>[^&\s,;)\]}}\"']*)", re.I)
# scheme://user:password@host (a store URL): the password, whatever it holds but "@", "/" and spaces
_URL_PASSWORD = re.compile(r"(?P<pre>\b[a-z][a-z0-9+.\-]*://[^\s:/@]*:)(?P<v>[^\s/@]+)@", re.I)
_ENCODED_FILTER = re.compile(r"(?P<pre>[?&]filter=)(?P<v>[^&\s\"']*)", re.I)


def _quoted(value: str) -> str:
    return f"{value[0]}{REDACTED}{value[0]}" if value[:1] in ("'", '"') else REDACTED


def _encoded_filter(match: re.Match[str]) -> str:
    decoded = unquote_plus(match["v"])
    redacted = redact_filter(decoded)
    return match[0] if redacted == decoded else match["pre"] + quote(redacted, safe="[]")


def redact_text(text: str) -> str:
    """Free text (a log line, a traceback) with the secret shapes above replaced."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['pre']}{REDACTED}@", text)
    text = _ENCODED_FILTER.sub(_encoded_filter, text)
    text = redact_filter(text)
    text = _QUOTED_PAIR.sub(lambda m: f"{m['q']}{m['name']}{m['q']}{m['sep']}{_quoted(m['v'])}", text)
    text = _HEADER.sub(lambda m: f"{m['name']}{m['q']}{m['sep']}{_quoted(m['v'])}", text)
    text = _SCHEME.sub(lambda m: f"{m[1]} {REDACTED}", text)
    return _PAIR.sub(lambda m: f"{m['pre']}{m['name']}={REDACTED}", text)


class RedactingFilter(logging.Filter):
    """A handler filter: the formatted message (arguments merged in) and any traceback text are
    redacted before the handler writes them. On a handler, it sees records of every logger that
    propagates there, the bridge's, uvicorn's and libraries' alike."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: keep them apart, redacted
            message = f"{record.msg} {record.args}"
        redacted = redact_text(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # formatted here, once, so the handler prints the redacted text (Formatter reuses exc_text)
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def install_log_redaction(*logger_names: str) -> None:
    """Add a RedactingFilter to every handler of the root logger and of the named loggers
    (uvicorn's loggers have their own handlers and do not propagate)."""
    for name in ("", *logger_names):
        for handler in logging.getLogger(name or None).handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
