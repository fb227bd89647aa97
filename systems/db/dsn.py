"""Which database a db process connects to: its ``--dsn``, or an existing server's.

Every process of the pattern (the services, the relay, ``setup``, the launcher's statistics) takes
``--dsn`` (the harness's own server, by default) and ``--dsn-env NAME``: when the environment
variable NAME (the harness passes ``DATABASE_URL``) is set and not empty, its value is the DSN
instead, so that ``DATABASE_URL=postgresql://… patternbench run db`` measures an existing server.
"""

from __future__ import annotations

import os


def chosen(dsn: str, env: str | None) -> str:
    """`env`'s value when that variable is set and not empty, else `dsn`."""
    value = os.environ.get(env, "") if env else ""
    return value or dsn


def external(env: str | None) -> str | None:
    """The existing server's DSN when `env` names a variable that is set; else None."""
    value = os.environ.get(env, "") if env else ""
    return value or None
