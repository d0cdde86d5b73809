# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Databases streamed from the source to the target: a dump piped into ssh, no temporary files."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import shutil
import subprocess
import time

from ansible_collections.hosting.migration.plugins.module_utils.transfer import (
    KEY_ROOT, Collector, TransferError, TransferInputError, check_database, check_peer, check_port,
    check_transfer_id, command_environment, first_lines, key_paths, require_key, ssh_base_command, write_all)

DATABASE_COPY_ARGUMENT_SPEC = dict(
    transfer_id=dict(type="str", required=True),
    peer=dict(type="str", required=True),
    port=dict(type="int", default=22),
    databases=dict(type="list", elements="dict", required=True),
)
DATABASE_COPY_MODULE_KWARGS = dict(argument_spec=DATABASE_COPY_ARGUMENT_SPEC, supports_check_mode=True)
CHUNK = 1 << 20
# A consistent snapshot of InnoDB tables without locking, with routines, triggers, events, binary
# data as hex; no CREATE DATABASE (the target's database exists, made by the account role).
MARIADB_DUMP_OPTIONS = ("--single-transaction", "--routines", "--triggers", "--events", "--hex-blob",
                        "--no-create-db")
# Owners and grants kept (the roles exist on the target); every object dropped first if it exists,
# so a copy after an interrupted one starts clean; identifiers quoted for a newer major version.
PG_DUMP_OPTIONS = ("--clean", "--if-exists", "--quote-all-identifiers", "--no-password")


def check_databases(databases):
    if not databases:
        raise TransferInputError("databases is empty: name at least one {engine, name}.")
    result = []
    for index, entry in enumerate(databases):
        field = "databases[%d]" % index
        if not isinstance(entry, dict) or set(entry) - {"engine", "name"}:
            raise TransferInputError("%s must be a dict with engine and name only (got %r)." % (field, entry))
        name = check_database(entry.get("engine"), entry.get("name"), field)
        if (entry["engine"], name) in result:
            raise TransferInputError("%s: %s database %s is named twice." % (field, entry["engine"], name))
        result.append((entry["engine"], name))
    return result


def mariadb_dump_tool(which=shutil.which):
    """mariadb-dump (MariaDB 10.5+), else mysqldump (the older name, also on Debian 12)."""
    for name in ("mariadb-dump", "mysqldump"):
        if which(name):
            return name
    return None


def dump_command(engine, name, mariadb_dump="mariadb-dump"):
    if engine == "mariadb":
        return [mariadb_dump] + list(MARIADB_DUMP_OPTIONS) + [name]
    return ["runuser", "-u", "postgres", "--", "pg_dump"] + list(PG_DUMP_OPTIONS) + [name]


def restore_command(paths, peer, engine, name, port=22):
    """ssh to the target's transfer endpoint, naming the restore only: the endpoint builds the command."""
    return ssh_base_command(paths, port) + ["-T", "root@" + peer, "hosting-restore %s %s" % (engine, name)]


def pipe(producer, consumer, env=None, chunk_size=CHUNK, clock=time.monotonic):
    """Run ``producer | consumer``, copying and counting the bytes in Python.

    Returns dict(bytes, elapsed_s, producer_rc, consumer_rc, producer_stderr, consumer_stderr,
    consumer_stdout). When the consumer stops reading, the producer is stopped; when the producer
    fails, the consumer is stopped rather than handed a clean end of input.
    """
    env = command_environment() if env is None else env
    started = clock()
    try:
        source = subprocess.Popen(producer, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)
    except OSError as error:
        raise TransferError("Cannot start %s: %s" % (producer[0], error), cmd=producer)
    try:
        sink = subprocess.Popen(consumer, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
    except OSError as error:
        source.kill()
        source.wait()
        raise TransferError("Cannot start %s: %s" % (consumer[0], error), cmd=consumer)
    source_errors, sink_errors, sink_output = Collector(source.stderr), Collector(sink.stderr), Collector(sink.stdout)
    total, broken = 0, False
    reader, writer = source.stdout.fileno(), sink.stdin.fileno()
    while True:
        chunk = os.read(reader, chunk_size)
        if not chunk:
            break
        try:
            write_all(writer, chunk)
        except (BrokenPipeError, ConnectionResetError):
            broken = True
            break
        total += len(chunk)
    if broken:
        source.terminate()
    source.stdout.close()
    producer_rc = source.wait()
    if producer_rc != 0 and not broken:
        sink.terminate()
    try:
        sink.stdin.close()
    except (BrokenPipeError, ConnectionResetError):
        pass
    consumer_rc = sink.wait()
    return dict(bytes=total, elapsed_s=round(clock() - started, 3), producer_rc=producer_rc,
                consumer_rc=consumer_rc, producer_stderr=source_errors.text(), consumer_stderr=sink_errors.text(),
                consumer_stdout=sink_output.text(), consumer_broke=broken)


def pipe_failure(outcome, what, producer_name, peer):
    """The sentence for a failed pipe, naming each side that failed with its first lines of stderr."""
    parts = []
    if outcome["producer_rc"] != 0 and not outcome["consumer_broke"]:
        parts.append("the dump (%s) exited with %d: %s" % (
            producer_name, outcome["producer_rc"], first_lines(outcome["producer_stderr"]) or "no message"))
    if outcome["consumer_broke"] and outcome["consumer_rc"] == 0:
        parts.append("the restore on %s stopped reading before the end of the dump: %s" % (
            peer, first_lines(outcome["consumer_stderr"]) or "no message"))
    if outcome["consumer_rc"] != 0:
        sentence = "the restore on %s exited with %d" % (peer, outcome["consumer_rc"])
        if outcome["consumer_rc"] == 255:
            sentence += " (ssh failed: unreachable, host key mismatch, or the key was refused or expired)"
        elif outcome["producer_rc"] != 0 and not outcome["consumer_broke"]:
            sentence += " (stopped because the dump failed)"
        parts.append("%s: %s" % (sentence, first_lines(outcome["consumer_stderr"]) or "no message"))
    if not parts:
        return None
    return "Copying %s failed: %s." % (what, "; ".join(parts))


def dump_tools(engines, which, purpose):
    """The MariaDB dump program for ``engines`` (None without MariaDB); TransferInputError when a
    dump tool the engines need is missing. ``purpose``: what the dumps are for, in the message."""
    dump_tool = mariadb_dump_tool(which) if "mariadb" in engines else None
    if "mariadb" in engines and dump_tool is None:
        raise TransferInputError("Neither mariadb-dump nor mysqldump is installed on this server.")
    if "postgresql" in engines and not (which("pg_dump") and which("runuser")):
        raise TransferInputError("pg_dump (and runuser) must be installed on this server to %s PostgreSQL databases."
                                 % purpose)
    return dump_tool


def run_database_copy(params, check_mode=False, key_root=KEY_ROOT, which=shutil.which, env=None):
    """What database_copy does; raises TransferError (TransferInputError before anything runs)."""
    transfer_id = check_transfer_id(params["transfer_id"])
    peer = check_peer(params["peer"])
    port = check_port(params.get("port", 22))
    databases = check_databases(params.get("databases"))
    paths = key_paths(transfer_id, key_root)
    require_key(paths, transfer_id)
    dump_tool = dump_tools(set(entry[0] for entry in databases), which, "copy")
    done, started = [], time.monotonic()
    for engine, name in databases:
        entry = dict(engine=engine, name=name, dump=dump_command(engine, name, dump_tool),
                     restore=restore_command(paths, peer, engine, name, port))
        if check_mode:
            done.append(dict(entry, bytes=None, elapsed_s=None))
            continue
        outcome = pipe(entry["dump"], entry["restore"], env=env)
        entry.update(bytes=outcome["bytes"], elapsed_s=outcome["elapsed_s"])
        message = pipe_failure(outcome, "%s database %s to %s" % (engine, name, peer), entry["dump"][0]
                               if engine == "mariadb" else "pg_dump", peer)
        if message:
            raise TransferError(message, databases=done, failed=dict(entry, dump_rc=outcome["producer_rc"],
                                                                     restore_rc=outcome["consumer_rc"]))
        done.append(entry)
    return dict(changed=True, databases=done, peer=peer, elapsed_s=round(time.monotonic() - started, 3),
                bytes=sum(entry["bytes"] or 0 for entry in done))
