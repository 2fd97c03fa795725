"""Studio users, their passwords (scrypt), log-in with a failed-attempt limit, and sessions.

A password is stored as ``scrypt$n$r$p$salt$hash`` (``hashlib.scrypt``, n=2**14, r=8, p=1: the
interactive-login parameters of the scrypt paper, about 16 MiB and tens of milliseconds). After
``MAX_FAILED`` wrong passwords in a row an account is locked for ``LOCK_S`` seconds; a correct
password during the lock is refused too, so guessing costs the lock time per ``MAX_FAILED``
tries. A session is a random token in an HttpOnly cookie; the store keeps only its SHA-256, so a
leaked database does not let anyone in, with a per-session CSRF token that every write must echo.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from affdata.db import Store
from affdata.errors import AuthError, ConfigError, NotFoundError
from affdata.schema import USER_ROLES, utcnow

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MAX_FAILED = 5
LOCK_S = 300
SESSION_HOURS = 12
MIN_PASSWORD = 8
_DUMMY_HASH = "scrypt$16384$8$1$00000000000000000000000000000000$" + "0" * 64


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    disabled: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str
    expires_at: datetime


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                         dklen=len(digest) // 2)
    return hmac.compare_digest(got.hex(), digest)


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 64 or not all(c.isalnum() or c in "._-" for c in name):
        raise ConfigError(f"user name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-'")
    return name


def add_user(store: Store, name: str, role: str = "annotator", password: str | None = None) -> str:
    """Create a user; returns the password (a generated one when none is given, shown once)."""
    name = _check_name(name)
    if role not in USER_ROLES:
        raise ConfigError(f"unknown role {role!r}; use one of {', '.join(USER_ROLES)}")
    if password is None:
        password = secrets.token_urlsafe(12)
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"a password needs at least {MIN_PASSWORD} characters")
    with store.transaction() as conn:
        if conn.execute(text("SELECT 1 FROM app_user WHERE name = :n"), {"n": name}).first():
            raise ConfigError(f"user {name!r} exists already")
        conn.execute(text("INSERT INTO app_user (name, role, password_hash, disabled, failed_logins, created_at) "
                          "VALUES (:n, :r, :h, :d, 0, :t)"),
                     {"n": name, "r": role, "h": hash_password(password), "d": False, "t": utcnow()})
    return password


def set_password(store: Store, name: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"a password needs at least {MIN_PASSWORD} characters")
    with store.transaction() as conn:
        done = conn.execute(text("UPDATE app_user SET password_hash = :h, failed_logins = 0, locked_until = NULL "
                                 "WHERE name = :n"), {"h": hash_password(password), "n": name}).rowcount
        if not done:
            raise NotFoundError(f"no user {name!r}")
        conn.execute(text("DELETE FROM web_session WHERE user_id = (SELECT id FROM app_user WHERE name = :n)"),
                     {"n": name})


def list_users(store: Store) -> list[User]:
    with store.connect() as conn:
        rows = conn.execute(text("SELECT id, name, role, disabled FROM app_user ORDER BY name")).all()
    return [User(r.id, r.name, r.role, bool(r.disabled)) for r in rows]


def get_user(store: Store, name: str) -> User:
    with store.connect() as conn:
        r = conn.execute(text("SELECT id, name, role, disabled FROM app_user WHERE name = :n"), {"n": name}).first()
    if r is None:
        raise NotFoundError(f"no user {name!r}; see `affdata annotate user list`")
    return User(r.id, r.name, r.role, bool(r.disabled))


def disable_user(store: Store, name: str) -> None:
    """Disable an account and end its sessions (its labels stay)."""
    with store.transaction() as conn:
        done = conn.execute(text("UPDATE app_user SET disabled = :t WHERE name = :n"), {"t": True, "n": name}).rowcount
        if not done:
            raise NotFoundError(f"no user {name!r}")
        conn.execute(text("DELETE FROM web_session WHERE user_id = (SELECT id FROM app_user WHERE name = :n)"),
                     {"n": name})


def _aware(t: datetime | str | None) -> datetime | None:
    """A UTC-aware datetime from either backend (SQLite hands back text through ``text()``)."""
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    return t.replace(tzinfo=timezone.utc) if t is not None and t.tzinfo is None else t


def log_in(store: Store, name: str, password: str) -> tuple[str, Session]:
    """Check the password and open a session; returns (cookie token, session).

    Every refusal says only "wrong name or password" or that the account is locked, so the
    answer does not tell which names exist.
    """
    now = utcnow()
    refusal: str | None = None
    with store.transaction() as conn:  # the failure count must be committed, so raise after it
        r = conn.execute(text("SELECT id, name, role, disabled, password_hash, failed_logins, locked_until "
                              "FROM app_user WHERE name = :n"), {"n": name}).first()
        locked = _aware(r.locked_until) if r is not None else None
        if r is None:
            verify_password(password, _DUMMY_HASH)  # the same cost as a real check
            refusal = "wrong name or password"
        elif locked is not None and locked > now:
            refusal = f"too many failed log-ins: locked until {locked:%H:%M:%S} UTC"
        elif r.disabled or not verify_password(password, r.password_hash):
            failed = (0 if locked is not None else r.failed_logins) + 1
            until = now + timedelta(seconds=LOCK_S) if failed >= MAX_FAILED else None
            conn.execute(text("UPDATE app_user SET failed_logins = :f, locked_until = :u WHERE id = :i"),
                         {"f": 0 if until else failed, "u": until, "i": r.id})
            refusal = "wrong name or password"
        else:
            conn.execute(text("UPDATE app_user SET failed_logins = 0, locked_until = NULL WHERE id = :i"),
                         {"i": r.id})
            token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            expires = now + timedelta(hours=SESSION_HOURS)
            conn.execute(text("DELETE FROM web_session WHERE expires_at < :t"), {"t": now})
            conn.execute(text("INSERT INTO web_session (token_sha256, user_id, csrf_token, created_at, expires_at) "
                              "VALUES (:h, :u, :c, :t, :e)"),
                         {"h": _token_hash(token), "u": r.id, "c": csrf, "t": now, "e": expires})
    if refusal is not None:
        raise AuthError(refusal)
    return token, Session(User(r.id, r.name, r.role), csrf, expires)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_for(store: Store, token: str | None) -> Session:
    """The session of a cookie token, or :class:`AuthError`."""
    if not token:
        raise AuthError("not logged in")
    with store.connect() as conn:
        r = conn.execute(text("SELECT u.id, u.name, u.role, u.disabled, s.csrf_token, s.expires_at "
                              "FROM web_session s JOIN app_user u ON u.id = s.user_id WHERE s.token_sha256 = :h"),
                         {"h": _token_hash(token)}).first()
    if r is None or r.disabled or _aware(r.expires_at) < utcnow():
        raise AuthError("not logged in (or the session expired)")
    return Session(User(r.id, r.name, r.role), r.csrf_token, _aware(r.expires_at))


def log_out(store: Store, token: str) -> None:
    with store.transaction() as conn:
        conn.execute(text("DELETE FROM web_session WHERE token_sha256 = :h"), {"h": _token_hash(token)})
