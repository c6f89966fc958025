"""`--state`: a bad value or an unreachable database is one clear error line (never a
traceback, never the password), and `unlock --state` breaks a lock held elsewhere with
nothing but the URL (no repo checkout)."""

from __future__ import annotations

import pytest

from reconciler.journal import Holder, LockLost
from reconciler.journal.pglock import PostgresLock
from reconciler.testing.journeys import cli_env, run
from reconciler.testing.ports import closed_port
from reconciler.testing.postgres import PASSWORD, PgServer

from .conftest import empty


def test_a_state_that_is_not_a_postgresql_url_is_refused(tmp_path) -> None:
    done = run("unlock", "--state", str(tmp_path), "--force", "abc", cwd=tmp_path, timeout=60)
    assert done.rc != 0 and "Traceback" not in done.output
    assert "not a postgresql://" in done.output and "--state-dir" in done.output


def test_an_unreachable_database_is_named_without_its_password(tmp_path) -> None:
    url = f"postgresql://ops:pw-very-secret@127.0.0.1:{closed_port()}/reconciler"
    done = run("unlock", "--state", url, "--force", "abc", cwd=tmp_path, timeout=60)
    assert done.rc != 0 and "Traceback" not in done.output, done.describe()
    assert "cannot open the shared state" in done.output, done.describe()
    assert "pw-very-secret" not in done.output
    assert "ops:***@127.0.0.1" in done.output


def test_unlock_from_another_machine_breaks_the_lock(
    pg_module_url: str, pg_server: PgServer, tmp_path
) -> None:
    empty(pg_module_url)
    holder = PostgresLock(pg_module_url)
    try:
        lease = holder.acquire("acme", Holder(user="alice", host="laptop", pid=7), ttl_s=3600)
        url = pg_module_url.replace(f":{PASSWORD}@", "@")  # the password from the environment
        env = {**cli_env(), "PGPASSWORD": PASSWORD}
        done = run("unlock", "--state", url, "--force", lease.lock_id, cwd=tmp_path, env=env)
        assert done.rc == 0, done.describe()
        assert lease.lock_id in done.output
        assert PASSWORD not in done.output
        with pytest.raises(LockLost):
            holder.renew(lease, ttl_s=3600)
        assert holder.holder("acme") is None
    finally:
        holder.close()
