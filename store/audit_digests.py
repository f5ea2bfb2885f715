"""Signed, chained digests of the audit trail, kept outside the database.

The hash chain inside ``audit_traces`` shows a record changed in place, but someone who can write
the database can also delete its newest records, empty the table, or re-hash the whole chain. So,
as AWS CloudTrail's log file integrity validation does, the writer signs a *digest* at intervals
and writes it to a folder the database never sees, with a key the database never holds. Each
digest covers the records since the one before it::

    {"number": 7, "first_seq": 601, "last_seq": 700, "count": 100,
     "start_hash": <chain hash of record 600>, "head_hash": <chain hash of record 700>,
     "previous_digest_hash": <sha256 of digest 6>, "previous_signature": <digest 6's signature>,
     "created_ms": ..., "algorithm": "hmac-sha256", "key_id": ..., "signature": ...}

The digests form a chain of their own (each names the previous digest's hash and signature), so a
deleted or edited digest file breaks it, and a digest forged without the key fails its signature.

The key is 32 random bytes (hex) in a file created on first start with mode 0600. Signatures are
HMAC-SHA256 from the standard library: ``cryptography`` (for Ed25519, which would let a verifier
check digests without the signing key) is not a dependency; ``algorithm`` names the scheme so a
public-key one can be added beside it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from store.audit_chain import GENESIS

ALGORITHM = "hmac-sha256"
KEY_BYTES = 32
_NAME = re.compile(r"^(\d{10})\.json$")
_MAX_DIGEST_BYTES = 64 << 10  # a digest is a few hundred bytes; anything bigger is not one


class AuditKeyError(ValueError):
    """The signing key file cannot be created or read; the message names the file."""


def load_or_create_key(path: Path) -> bytes:
    """The signing key in ``path``, created (mode 0600, never overwritten) when it does not exist."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(KEY_BYTES) + "\n")
                out.flush()
                os.fsync(out.fileno())
            logger.info(
                "audit digest key created at {} (keep a copy: digests cannot be checked without it)", path
            )
        text = path.read_text().strip()
        mode = path.stat().st_mode & 0o777
    except OSError as err:
        raise AuditKeyError(f"audit key file {path}: {err.strerror or err}") from None
    if mode & 0o077:
        logger.warning("audit key file {} is readable by others (mode {:o}); use 0600", path, mode)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise AuditKeyError(f"audit key file {path}: expected {KEY_BYTES * 2} hex digits") from None
    if len(key) < KEY_BYTES:
        raise AuditKeyError(f"audit key file {path}: expected {KEY_BYTES * 2} hex digits")
    return key


@dataclass(frozen=True, slots=True)
class Digest:
    """One signed digest: the records ``first_seq..last_seq`` and where the chain stood."""

    number: int
    first_seq: int
    last_seq: int
    count: int
    start_hash: str
    head_hash: str
    created_ms: int
    previous_digest_hash: str
    previous_signature: str
    algorithm: str = ALGORITHM
    key_id: str = ""
    signature: str = ""

    def body(self) -> bytes:
        """What the signature covers: every field but the signature, as canonical JSON."""
        fields = dataclasses.asdict(self)
        del fields["signature"]
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def digest_hash(self) -> str:
        """The hash the next digest names: the signed body and its signature together."""
        return hashlib.sha256(self.body() + b"\n" + self.signature.encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def key_id(key: bytes) -> str:
    """A short, public name for a key (so a digest says which key signed it)."""
    return hashlib.sha256(b"infersight audit key\n" + key).hexdigest()[:16]


def sign(key: bytes, digest: Digest) -> Digest:
    """The digest with ``key_id`` set and its signature over everything else."""
    named = dataclasses.replace(digest, algorithm=ALGORITHM, key_id=key_id(key), signature="")
    return dataclasses.replace(named, signature=hmac.new(key, named.body(), hashlib.sha256).hexdigest())


def signature_ok(key: bytes, digest: Digest) -> bool:
    if digest.algorithm != ALGORITHM or digest.key_id != key_id(key):
        return False
    expected = hmac.new(key, digest.body(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, digest.signature)


def digest_from_json(data: Any) -> Digest:
    """A digest from its file's JSON; ValueError naming the field when it is not one."""
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    names = {f.name: f.type for f in dataclasses.fields(Digest)}
    if set(data) != set(names):
        missing, extra = set(names) - set(data), set(data) - set(names)
        raise ValueError(f"fields differ (missing {sorted(missing)}, unexpected {sorted(extra)})")
    for name, kind in names.items():
        wanted = int if kind == "int" else str
        if type(data[name]) is not wanted:
            raise ValueError(f"{name}: expected {wanted.__name__}")
    return Digest(**data)


@dataclass(frozen=True, slots=True)
class DigestProblem:
    """A digest file that is missing, unreadable, unsigned or out of its chain."""

    number: int
    detail: str


class DigestFolder:
    """The digest files of one audit trail: ``folder/0000000001.json``, ``0000000002.json``, …

    ``DigestFolder(path, key).write(first_seq, last_seq, start_hash, head_hash)`` signs and writes
    the next one (atomically: a temporary file, fsync, rename); ``read()`` returns the ones whose
    signature holds and the problems found in the folder.
    """

    def __init__(self, folder: Path, key: bytes) -> None:
        self.folder = folder
        self._key = key
        self._last: Digest | None = None
        self._loaded = False

    def check_writable(self) -> None:
        """Create the folder and prove a file can be written there (start-up refuses otherwise)."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = self.folder / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()

    def forget(self) -> None:
        """Read the folder again on the next ``last()``: another process may have written to it
        (a folder shared by the servers of a cluster, each signing while it leads)."""
        self._loaded = False

    def last(self) -> Digest | None:
        """The newest digest with a valid signature (the writer continues its chain)."""
        if not self._loaded:
            digests, _ = self.read()
            self._last = digests[-1] if digests else None
            self._loaded = True
        return self._last

    def write(
        self, first_seq: int, last_seq: int, start_hash: str, head_hash: str, now_ms: int | None = None
    ) -> Digest:
        previous = self.last()
        unsigned = Digest(
            number=previous.number + 1 if previous else 1,
            first_seq=first_seq,
            last_seq=last_seq,
            count=last_seq - first_seq + 1,
            start_hash=start_hash,
            head_hash=head_hash,
            created_ms=int(time.time() * 1000) if now_ms is None else now_ms,
            previous_digest_hash=previous.digest_hash() if previous else GENESIS,
            previous_signature=previous.signature if previous else "",
        )
        digest = sign(self._key, unsigned)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.folder / f"{digest.number:010d}.json"
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w") as out:
            json.dump(digest.to_json(), out, sort_keys=True, indent=1)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
        with contextlib.suppress(OSError):  # the rename itself is durable once the folder is synced
            fd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self._last, self._loaded = digest, True
        return digest

    def read(self) -> tuple[list[Digest], list[DigestProblem]]:
        """Every digest whose signature holds, in order, and what is wrong with the folder.

        A digest with a valid signature is trusted for what it says even where its chain is broken
        (only the key holder could have written it); the break itself is a problem.
        """
        if not self.folder.is_dir():
            return [], []
        problems: list[DigestProblem] = []
        valid: list[Digest] = []
        for path in sorted(self.folder.iterdir()):
            if path.name.startswith("."):
                continue
            match = _NAME.match(path.name)
            if not match:
                problems.append(DigestProblem(0, f"{path.name}: not a digest file name"))
                continue
            number = int(match[1])
            digest, problem = self._load(path, number)
            if problem:
                problems.append(DigestProblem(number, problem))
            elif digest is not None:
                valid.append(digest)
        problems += _chain_problems(valid)
        return valid, problems

    def _load(self, path: Path, number: int) -> tuple[Digest | None, str]:
        try:
            if path.stat().st_size > _MAX_DIGEST_BYTES:
                return None, f"digest {number}: file too large to be a digest"
            digest = digest_from_json(json.loads(path.read_bytes()))
        except OSError as err:
            return None, f"digest {number}: cannot read {path.name}: {err.strerror or err}"
        except ValueError as err:  # JSON syntax, or not a digest's fields
            return None, f"digest {number}: not a valid digest ({err})"
        if not signature_ok(self._key, digest):
            return None, f"digest {number}: signature does not match (edited, or not signed with this key)"
        if digest.number != number:
            return None, f"digest {number}: file holds digest {digest.number} (renamed or copied)"
        return digest, ""


def _chain_problems(digests: list[Digest]) -> list[DigestProblem]:
    """Breaks in the digest chain: a digest missing before another, or one not following its predecessor."""
    problems: list[DigestProblem] = []
    expected_number, previous = 1, None
    for digest in digests:
        if digest.number != expected_number:
            missing = (
                f"{expected_number}"
                if digest.number == expected_number + 1
                else (f"{expected_number}-{digest.number - 1}")
            )
            problems.append(
                DigestProblem(digest.number, f"digest {missing} missing before digest {digest.number}")
            )
        if previous is not None and digest.number == previous.number + 1:
            if (digest.previous_digest_hash, digest.previous_signature) != (
                previous.digest_hash(),
                previous.signature,
            ):
                problems.append(
                    DigestProblem(
                        digest.number, f"digest {digest.number} does not name digest {previous.number}"
                    )
                )
            if (digest.first_seq, digest.start_hash) != (previous.last_seq + 1, previous.head_hash):
                problems.append(
                    DigestProblem(
                        digest.number,
                        f"digest {digest.number} does not continue where digest {previous.number} ended",
                    )
                )
        elif (
            previous is None and digest.number == 1 and (digest.first_seq, digest.start_hash) != (1, GENESIS)
        ):
            problems.append(DigestProblem(1, "digest 1 does not start at the beginning of the trail"))
        if digest.count != digest.last_seq - digest.first_seq + 1 or digest.count < 1:
            problems.append(
                DigestProblem(digest.number, f"digest {digest.number}: count does not match its seq range")
            )
        expected_number, previous = digest.number + 1, digest
    return problems
