"""Who may change a served collection, and who may read it: bearer tokens, compared in constant time.

Why tokens and not accounts: the server is one team's service behind their own network;
what must be separated is "may ask" from "may change the documents". An admin token
(``SPEECH_QA_ADMIN_TOKEN`` or ``--admin-token-file``) opens the write routes; without one
they stay shut (403 saying how to open them), never open by default. Reads of the JSON API
are open unless ``SPEECH_QA_READ_TOKEN`` is set; then they need it (or the admin token).
The page never shows or asks for a token: it only asks questions and keeps uploads in the
visitor's own session (put it behind a login if the documents themselves are private).

Why ``hmac.compare_digest``: a plain ``==`` returns sooner the earlier the first wrong
character, which lets a patient client guess a token one character at a time.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ADMIN_TOKEN_ENV = "SPEECH_QA_ADMIN_TOKEN"
READ_TOKEN_ENV = "SPEECH_QA_READ_TOKEN"
MIN_TOKEN_CHARS = 16
"""Shortest token accepted: anything shorter is guessable, so it is refused at start."""

WRITES_DISABLED = (f"changing the documents is disabled on this server: start it with "
                   f"{ADMIN_TOKEN_ENV} set (or --admin-token-file PATH) and send "
                   "'Authorization: Bearer <token>'")
NEEDS_ADMIN = "this needs the admin token: send 'Authorization: Bearer <token>'"
NEEDS_READ = (f"this server needs a token to read ({READ_TOKEN_ENV} is set): "
              "send 'Authorization: Bearer <token>'")
WRONG_TOKEN = "the token is not valid for this request"


class TokenError(ValueError):
    """A configured token is unusable (empty, too short, unreadable file): one line."""


@dataclass(frozen=True)
class Refusal:
    """Why a request may not go on: its status (401 or 403) and one sentence."""

    status: int
    message: str


@dataclass(frozen=True)
class Access:
    """The tokens a server checks (kept out of ``repr``, so no log or traceback shows them)."""

    admin: str | None = field(default=None, repr=False)
    read: str | None = field(default=None, repr=False)

    @classmethod
    def configured(cls, admin_token_file: Path | None = None,
                   environ: Mapping[str, str] | None = None) -> Access:
        """The tokens from ``--admin-token-file`` (which wins) or the environment.

        Raises:
            TokenError: A token is shorter than ``MIN_TOKEN_CHARS``, or the file cannot
                be read (one line naming it; never the token).
        """
        env = os.environ if environ is None else environ
        admin = env.get(ADMIN_TOKEN_ENV) or None
        if admin_token_file is not None:
            try:
                admin = admin_token_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise TokenError(f"{admin_token_file}: cannot read the admin token "
                                 f"({exc.__class__.__name__})") from None
            if not admin:
                raise TokenError(f"{admin_token_file}: the admin token file is empty")
        read = env.get(READ_TOKEN_ENV) or None
        for name, token in (("the admin token", admin), (READ_TOKEN_ENV, read)):
            if token is not None and len(token.strip()) < MIN_TOKEN_CHARS:
                raise TokenError(f"{name} is shorter than {MIN_TOKEN_CHARS} characters; "
                                 "use a long random one (e.g. python -c \"import secrets; "
                                 "print(secrets.token_urlsafe(32))\")")
        return cls(admin.strip() if admin else None, read.strip() if read else None)

    @property
    def writes_enabled(self) -> bool:
        """Whether an admin token is configured (else every write is refused with 403)."""
        return self.admin is not None

    def check_write(self, authorization: str | None) -> Refusal | None:
        """None when ``authorization`` carries the admin token; else the refusal."""
        if self.admin is None:
            return Refusal(403, WRITES_DISABLED)
        token = bearer(authorization)
        if token is None:
            return Refusal(401, NEEDS_ADMIN)
        return None if _same(token, self.admin) else Refusal(401, WRONG_TOKEN)

    def check_read(self, authorization: str | None) -> Refusal | None:
        """None when reads are open or ``authorization`` carries the read or admin token."""
        if self.read is None:
            return None
        token = bearer(authorization)
        if token is None:
            return Refusal(401, NEEDS_READ)
        # Both compared, always: the time taken does not say which one matched.
        matches = [_same(token, self.read), self.admin is not None and _same(token, self.admin)]
        return None if any(matches) else Refusal(401, WRONG_TOKEN)


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (None when absent or another scheme)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


__all__ = ["ADMIN_TOKEN_ENV", "READ_TOKEN_ENV", "Access", "Refusal", "TokenError", "bearer"]
