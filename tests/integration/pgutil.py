# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scratch databases on the lab's PostgreSQL and independent reads of their contents."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql


def connect(url: str, dbname: str | None = None) -> Any:
    kwargs = {"dbname": dbname} if dbname else {}
    conn = psycopg2.connect(url, **kwargs)
    conn.autocommit = True
    return conn


@contextlib.contextmanager
def scratch_db(lab_env: dict[str, str], prefix: str, owner: str | None = None,
               ) -> Iterator[str]:
    """Create a database named ``<prefix>_<random>`` owned by the app user; drop it after."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    owner = owner or lab_env["LAB_PG_APP_USER"]
    admin = connect(lab_env["LAB_PG_ADMIN_URL"])
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(owner)))
        yield name
    finally:
        drop_db(lab_env, name, admin)
        admin.close()


def drop_db(lab_env: dict[str, str], name: str, admin: Any = None) -> None:
    own = admin is None
    admin = admin or connect(lab_env["LAB_PG_ADMIN_URL"])
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
    finally:
        if own:
            admin.close()


def db_url(lab_env: dict[str, str], name: str, admin: bool = False) -> str:
    """DATABASE_URL (or the admin URL) pointing at database ``name``."""
    base = lab_env["LAB_PG_ADMIN_URL" if admin else "DATABASE_URL"]
    head, _q, query = base.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


def fingerprint(conn: Any) -> dict[str, tuple[int, str]]:
    """{schema.table: (row count, md5 of the rows in a stable order)} of user tables."""
    result = {}
    with conn.cursor() as cur:
        cur.execute("""SELECT n.nspname, c.relname FROM pg_class c
                       JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE c.relkind IN ('r', 'p')
                         AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                         AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2""")
        for schema, table in cur.fetchall():
            cur.execute(sql.SQL(
                "SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)),"
                " '') FROM {}.{} t").format(sql.Identifier(schema), sql.Identifier(table)))
            count, digest = cur.fetchone()
            result[f"{schema}.{table}"] = (count, digest)
    return result


def schema_dump(conn: Any) -> list[tuple[Any, ...]]:
    """Columns, constraints and indexes of user tables: equal lists mean equal schemas."""
    with conn.cursor() as cur:
        cur.execute("""SELECT table_schema, table_name, column_name, data_type, is_nullable,
                              column_default FROM information_schema.columns
                       WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
                       ORDER BY 1, 2, 3""")
        rows = [("column", *r) for r in cur.fetchall()]
        cur.execute("""SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes
                       WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
                       ORDER BY 1, 2, 3""")
        rows += [("index", *r) for r in cur.fetchall()]
        cur.execute("""SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
                       FROM pg_constraint WHERE connamespace <> 'pg_catalog'::regnamespace
                       ORDER BY 1, 2""")
        rows += [("constraint", *r) for r in cur.fetchall()]
    return rows


REFAPP = Path(__file__).resolve().parents[1] / "app"


def copy_refapp_migrations(dest: Path) -> Path:
    """The reference app's alembic.ini and migrations copied to ``dest`` (a test may add
    revisions to the copy)."""
    dest.mkdir()
    shutil.copy(REFAPP / "alembic.ini", dest / "alembic.ini")
    shutil.copytree(REFAPP / "migrations", dest / "migrations",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return dest
