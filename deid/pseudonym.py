"""Keyed, deterministic pseudonyms (HMAC-SHA256): UIDs, IDs, names, per-patient date offsets.

No state: the same key and the same original value give the same pseudonym in every process and on
every machine, so Dask workers never need to talk to each other. The key is never printed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import stat
import unicodedata
from pathlib import Path

from deid.errors import KeyFileError

#: Environment variable that may hold the key (hex or base64, or any text of 32+ characters).
KEY_ENV = "DEID_KEY"
MIN_KEY_BYTES = 16
_UID_MAX = 64


def generate_key() -> bytes:
    """A new random 256-bit key."""
    return secrets.token_bytes(32)


def write_key_file(path: Path) -> None:
    """Write a new key to ``path`` readable only by its owner; never overwrite an existing file."""
    key = generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    except FileExistsError:
        raise KeyFileError(f"{path}: a file already exists; refusing to overwrite a key.") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create key file ({exc.strerror}).") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(key.hex() + "\n")


def _decode_key_text(text: str, origin: str) -> bytes:
    text = text.strip()
    if re.fullmatch(r"[0-9a-fA-F]+", text) and len(text) % 2 == 0:
        key = bytes.fromhex(text)
    else:
        key = text.encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(
            f"{origin}: key is shorter than {MIN_KEY_BYTES} bytes; "
            "create one with 'deid keygen FILE'."
        )
    return key


def read_key_file(path: Path) -> bytes:
    """Read a key written by :func:`write_key_file` (hex), or any text of 16+ bytes."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not text"
        raise KeyFileError(f"{path}: cannot read key file ({reason}).") from None
    return _decode_key_text(text, str(path))


def key_from_env() -> bytes | None:
    """The key in ``$DEID_KEY``, or ``None`` when the variable is unset."""
    text = os.environ.get(KEY_ENV)
    if not text:
        return None
    return _decode_key_text(text, f"${KEY_ENV}")


class Pseudonymizer:
    """Derives every pseudonym of a run from one secret key.

    Parameters
    ----------
    key:
        The secret key. Different keys give unrelated pseudonyms.
    """

    __slots__ = ("_key", "_uid_cache")

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise KeyFileError(f"key is shorter than {MIN_KEY_BYTES} bytes.")
        self._key = key
        self._uid_cache: dict[str, str] = {}

    def __repr__(self) -> str:  # never show the key
        return "Pseudonymizer(key=<hidden>)"

    def _digest(self, domain: str, value: str) -> bytes:
        message = domain.encode("ascii") + b"\x00" + value.encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """A ``2.25.`` UID (PS3.5 B.2) derived from ``original``; at most 64 characters."""
        original = original.strip().rstrip("\x00")
        cached = self._uid_cache.get(original)
        if cached is not None:
            return cached
        number = int.from_bytes(self._digest("uid", original)[:16], "big")
        result = f"2.25.{number}"[:_UID_MAX]
        if len(self._uid_cache) >= 4096:  # bounded: memory stays flat over millions of files
            self._uid_cache.clear()
        self._uid_cache[original] = result
        return result

    def identifier(self, original: str, length: int = 12, prefix: str = "") -> str:
        """An upper-case base32 pseudonym of an identifier (patient ID, accession number)."""
        norm = normalise_identifier(original)
        text = base64.b32encode(self._digest("id", norm)).decode("ascii").rstrip("=")
        return prefix + text[:length]

    def person_name(self, original: str) -> str:
        """A pseudonymous person name ``ANON^<code>``; equal names after normalisation (case,
        spaces, trailing empty components) give the same pseudonym."""
        norm = normalise_person_name(original)
        if not norm:
            return ""
        text = base64.b32encode(self._digest("pn", norm)).decode("ascii").rstrip("=")
        return f"ANON^{text[:10]}"

    def day_offset(self, patient_key: str) -> int:
        """Per-patient shift in days (between -3650 and -365, never 0) for Modified Dates."""
        norm = normalise_identifier(patient_key)
        value = int.from_bytes(self._digest("date", norm)[:4], "big")
        return -(365 + value % (3650 - 365 + 1))

    def short(self, domain: str, original: str, length: int = 8) -> str:
        """A short pseudonym for other values (AE titles, station names)."""
        text = base64.b32encode(self._digest(domain, original.strip())).decode("ascii")
        return text[:length]


def normalise_identifier(value: str) -> str:
    """Identifiers compare case-insensitively and without surrounding spaces or NULs."""
    return unicodedata.normalize("NFKC", value).strip(" \x00").upper()


def normalise_person_name(value: str) -> str:
    """Canonical form of a PN value: NFKC, upper case, spaces collapsed in each component,
    trailing empty components and component groups dropped (``doe^john^a^`` == ``DOE^JOHN^A``)."""
    text = unicodedata.normalize("NFKC", value).strip(" \x00")
    groups = []
    for group in text.split("="):
        components = [" ".join(c.split()).upper() for c in group.split("^")]
        while components and not components[-1]:
            components.pop()
        groups.append("^".join(components))
    while groups and not groups[-1]:
        groups.pop()
    return "=".join(groups)
