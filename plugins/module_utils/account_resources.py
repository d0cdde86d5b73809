# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an account holds on a server: files under its home and the size of its databases."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import stat


def home_usage(home):
    """Count the entries under a home that are not directories, and the bytes of its regular
    files, each inode once (hard links are one file's data)."""
    files = 0
    size = 0
    seen = set()
    for directory, subdirs, names in os.walk(home):
        for name in names:
            info = os.lstat(os.path.join(directory, name))
            files += 1
            if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                size += info.st_size
    return {"files": files, "bytes": size}


def _sql_list(names):
    # Names were checked against [a-z0-9_] by the spec; quoting is belt and braces.
    return ", ".join("'%s'" % name.replace("'", "''") for name in names)


def mariadb_sizes(run, names):
    """Bytes of data and indexes per MariaDB database, through the local socket as root."""
    if not names:
        return {}
    query = ("SELECT table_schema, COALESCE(SUM(data_length + index_length), 0) "
             "FROM information_schema.tables WHERE table_schema IN (%s) GROUP BY table_schema" % _sql_list(names))
    return _parse_sizes(run(["mariadb", "--batch", "--skip-column-names", "-e", query]), names)


def postgresql_sizes(run, names):
    """Bytes on disk per PostgreSQL database, as the postgres system user."""
    if not names:
        return {}
    query = "SELECT datname, pg_database_size(datname) FROM pg_database WHERE datname IN (%s)" % _sql_list(names)
    return _parse_sizes(run(["runuser", "-u", "postgres", "--", "psql", "-XAtF", "\t", "-c", query]), names)


def _parse_sizes(output, names):
    sizes = dict.fromkeys(names)
    for line in output.splitlines():
        name, _sep, value = line.partition("\t")
        if name in sizes and value.strip().isdigit():
            sizes[name] = int(value)
    return sizes


def account_resources(spec, run):
    """Resources of one account. `run(argv) -> stdout` runs a command on the server."""
    usage = home_usage(spec.home) if os.path.isdir(spec.home) else {"files": 0, "bytes": 0}
    by_engine = {"mariadb": mariadb_sizes, "postgresql": postgresql_sizes}
    databases = []
    for engine, sizes_of in by_engine.items():
        names = [db.name for db in spec.databases if db.engine == engine]
        sizes = sizes_of(run, names)
        databases.extend({"engine": engine, "name": name, "bytes": sizes[name], "exists": sizes[name] is not None}
                         for name in names)
    return {
        "home_exists": os.path.isdir(spec.home),
        "files": usage["files"],
        "bytes": usage["bytes"],
        "databases": databases,
        "database_bytes": sum(db["bytes"] or 0 for db in databases),
        "cron_entries": len(spec.cron),
        "mailboxes": len(spec.mailboxes),
        "domains": sorted({domain for site in spec.sites for domain in site.domains}),
        "php": sorted({site.php for site in spec.sites}),
    }
