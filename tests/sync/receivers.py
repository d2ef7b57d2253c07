"""Local receivers for the bridge's notifications: an HTTP endpoint that checks nothing itself
(the tests verify the signature the way an operator's receiver would), and an SMTP server with
STARTTLS and a login, on free loopback ports."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import json
import ssl
import threading
import time
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SECRET = "notify-secret-for-tests-0123456789"


def verify(secret: str, headers: dict[str, str], body: bytes, max_age: float = 300) -> bool:
    """What a receiver does with a notification (the README's snippet)."""
    timestamp = headers["x-scim-bridge-timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(timestamp)) <= max_age
    return fresh and hmac.compare_digest(expected, headers["x-scim-bridge-signature"])


class Receiver:
    """POST /hook: answers 503 to the first `fail_first` attempts, then 204; keeps every attempt."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.attempts: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            with self._lock:
                accepted = len(self.attempts) >= self.fail_first
                self.attempts.append({"headers": dict(request.headers), "body": body, "accepted": accepted})
            return Response(status_code=204 if accepted else 503)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The notifications taken (accepted attempts), as JSON, each checked against its signature."""
        found = []
        for attempt in list(self.attempts):
            if not attempt["accepted"]:
                continue
            assert verify(SECRET, attempt["headers"], attempt["body"]), "a notification with a bad signature"
            body = json.loads(attempt["body"])
            if name is None or body["event"] == name:
                found.append(body)
        return found


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key, made here (cryptography)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class Mailbox:
    """An SMTP server (aiosmtpd) requiring STARTTLS and then a login; keeps each message with
    whether it came over TLS and from whom."""

    def __init__(self, directory: Path, port: int, user: str, password: str) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        cert, key = self_signed(directory)
        self.ca_file = cert
        self.messages: list[tuple[Message, bool, str | None]] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        box = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                login = getattr(session.auth_data, "login", None)  # the LoginPassword the authenticator took
                login = login.decode() if isinstance(login, bytes) else login
                box.messages.append((message_from_bytes(envelope.content), session.ssl is not None, login))
                return "250 OK"

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            ok = isinstance(data, LoginPassword) and data.login.decode() == user and data.password.decode() == password
            return AuthResult(success=ok, handled=False, auth_data=data)

        self.controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=port,
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=authenticate,
        )

    def __enter__(self) -> Mailbox:
        self.controller.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.controller.stop()
