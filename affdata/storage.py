"""Where exports live: a local folder, or any fsspec URL (``s3://``, ``gs://``, ``az://``,
``file://``...).

Credentials and endpoints come from where each backend's own tools read them (for S3: the
``AWS_*`` environment variables, ``~/.aws/``, or ``AWS_ENDPOINT_URL`` for another S3-compatible
service; fsspec's own config in ``~/.config/fsspec/`` or ``FSSPEC_S3_ENDPOINT_URL`` style
variables), never from a command-line argument: a URL carrying ``user:secret@`` is refused,
and only :func:`redact` forms of URLs are ever logged.

fsspec (and s3fs, gcsfs, adlfs for their schemes) is imported only when a URL is used.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from affdata.errors import ConfigError

LOCAL_SCHEMES = ("", "file", "local")
STAGING_ENV = "AFFDATA_STAGING"


def is_url(location: str | os.PathLike[str]) -> bool:
    """True for ``scheme://...`` other than ``file://`` (a plain path is a local folder)."""
    text = str(location)
    return "://" in text and urlsplit(text).scheme.lower() not in LOCAL_SCHEMES


def check_url(url: str) -> str:
    """``url`` without a trailing ``/``; refuses credentials in it."""
    parts = urlsplit(url)
    if parts.username or parts.password or "@" in parts.netloc:
        raise ConfigError(f"{redact(url)}: credentials in the URL are refused (they would show in "
                          "process lists and logs); use the environment or fsspec's config")
    if not parts.netloc and not parts.path.strip("/"):
        raise ConfigError(f"{url}: no bucket or path in the URL")
    return url.rstrip("/")


def redact(url: str) -> str:
    """The URL with any user info and query string removed (safe to log)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{host}{parts.path}"


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path inside it."""
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - fsspec is a dependency
        raise ConfigError(f"{redact(url)}: reading URLs needs fsspec ({exc})") from None
    try:
        fs, root = fsspec.core.url_to_fs(check_url(url))
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"{redact(url)}: no filesystem for this URL ({exc}); for s3:// install "
                          "s3fs, for gs:// gcsfs, for az:// adlfs") from None
    return fs, root.rstrip("/")


def staging_root(url: str) -> Path:
    """The local folder an export to ``url`` is built in before it is uploaded:
    ``$AFFDATA_STAGING`` or ``~/.cache/affdata/staging``, one subfolder per URL."""
    base = Path(os.environ.get(STAGING_ENV) or Path.home() / ".cache" / "affdata" / "staging")
    key = hashlib.sha256(check_url(url).encode()).hexdigest()[:16]
    return base / key
