"""State URLs: telling a `postgresql://` database from a directory, and printing one safely.

No database driver is loaded here: the embedded (SQLite) default never imports psycopg.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

URL_SCHEMES: Final = ("postgresql", "postgres")
PASSWORD_ENV: Final = "RECONCILER_STATE_PASSWORD"  # noqa: S105 (a variable name, not a secret)


def is_url(state: str | None) -> bool:
    """Whether a --state / fleet.yaml `state:` value names a PostgreSQL database."""
    return state is not None and urlsplit(state).scheme in URL_SCHEMES


def shown(url: str) -> str:
    """The URL as it may be printed: any password in it replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
