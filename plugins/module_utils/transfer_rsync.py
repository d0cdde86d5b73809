# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A directory pushed from the source to the target with rsync over the transfer's SSH key."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re
import subprocess
import time

from ansible_collections.hosting.migration.plugins.module_utils.transfer import (
    KEY_ROOT, Collector, TransferError, TransferInputError, check_directory, check_peer, check_port,
    check_transfer_id, command_environment, first_lines, key_paths, require_key, ssh_base_command)

ACCOUNT_SYNC_ARGUMENT_SPEC = dict(
    transfer_id=dict(type="str", required=True),
    peer=dict(type="str", required=True),
    port=dict(type="int", default=22),
    source_path=dict(type="path", required=True),
    target_path=dict(type="path"),
    delete=dict(type="bool", default=True),
    bandwidth_limit=dict(type="str"),
    ignore_vanished=dict(type="bool", default=False),
)
ACCOUNT_SYNC_MODULE_KWARGS = dict(argument_spec=ACCOUNT_SYNC_ARGUMENT_SPEC, supports_check_mode=True)

# The options of every sync: archive with hard links, ACLs, xattrs, sparse files, numeric owners;
# modification times compared to the nanosecond (--modify-window=-1, rsync 3.1.3+ on both sides).
RSYNC_OPTIONS = ("-aHAXS", "--numeric-ids", "--modify-window=-1", "--info=stats2")
ITEM_PREFIX = "hm-item:"
BANDWIDTH_RE = re.compile(r"[1-9][0-9]{0,8}[KMG]?")
STATS_FIELDS = (
    ("Number of files", "files"),
    ("Number of created files", "created"),
    ("Number of deleted files", "deleted"),
    ("Number of regular files transferred", "transferred"),
    ("Total file size", "total_size"),
    ("Total transferred file size", "transferred_size"),
    ("Literal data", "literal_data"),
    ("Matched data", "matched_data"),
    ("File list size", "file_list_size"),
    ("Total bytes sent", "bytes_sent"),
    ("Total bytes received", "bytes_received"),
)
EXIT_CODES = {
    1: "rsync was called wrongly (syntax or usage error)",
    2: "the two rsync versions cannot talk to each other (protocol incompatibility)",
    3: "a source or target directory could not be selected",
    4: "an option is not supported on one side (ACLs or xattrs not supported by rsync or the file system?)",
    5: "rsync could not start talking to the target",
    10: "a network error (socket I/O)",
    11: "a file could not be read or written",
    12: "the connection broke in the middle of the rsync protocol: the target's transfer endpoint refused "
        "the command (see its message), rsync is missing there, or the target ran out of space",
    13: "rsync reported an internal error (program diagnostics)",
    14: "an error in rsync's inter-process communication",
    20: "rsync was interrupted (SIGINT or SIGUSR1)",
    21: "an error waiting for an rsync child process",
    22: "rsync could not allocate memory",
    23: "partial transfer: some files or attributes could not be copied (see the messages)",
    24: "partial transfer: some source files vanished while they were being copied (the account is live)",
    25: "rsync stopped deleting at its --max-delete limit",
    30: "timeout while sending or receiving data",
    35: "timeout waiting for the connection",
    255: "ssh failed: the target is unreachable, its host key does not match the one pinned for this transfer, "
         "or it refused the key (not authorised, expired, or not from this address)",
}


def check_bandwidth(value):
    """rsync's --bwlimit: a whole number of KiB per second, or with a K, M or G suffix."""
    if value in (None, ""):
        return None
    text = str(value).strip().upper()
    if not BANDWIDTH_RE.fullmatch(text):
        raise TransferInputError("bandwidth_limit %r is not valid: give KiB per second (e.g. 20000) or a number "
                                 "with K, M or G (e.g. 50M)." % (value,))
    return text


def remote_spec(peer, path):
    host = "[%s]" % peer if ":" in peer else peer
    return "root@%s:%s/" % (host, path)


def rsync_command(paths, peer, source_path, target_path, port=22, delete=True, bandwidth_limit=None,
                  dry_run=False, rsync="rsync"):
    """The rsync argv; the trailing slashes copy the content of source_path into target_path."""
    argv = [rsync] + list(RSYNC_OPTIONS) + ["--out-format=" + ITEM_PREFIX + "%i"]
    if delete:
        argv.append("--delete")
    if bandwidth_limit:
        argv.append("--bwlimit=" + bandwidth_limit)
    if dry_run:
        argv.append("--dry-run")
    argv += ["-e", " ".join(ssh_base_command(paths, port)), source_path + "/", remote_spec(peer, target_path)]
    return argv


def _number(text):
    match = re.match(r"\s*([0-9][0-9,]*)", text)
    return int(match.group(1).replace(",", "")) if match else None


def parse_stats(text):
    """rsync's --info=stats2 block as integers (numbers with thousands separators are fine)."""
    stats = {}
    labels = dict(STATS_FIELDS)
    for line in (text or "").splitlines():
        label, colon, value = line.partition(":")
        if colon and label.strip() in labels:
            number = _number(value)
            if number is not None:
                stats[labels[label.strip()]] = number
    return stats


def count_changes(lines):
    """(items, deletions) among rsync's --out-format lines: every created, changed or deleted entry."""
    items = deletions = 0
    for line in lines:
        if line.startswith(ITEM_PREFIX):
            items += 1
            if line[len(ITEM_PREFIX):].startswith("*deleting"):
                deletions += 1
    return items, deletions


def exit_sentence(rc):
    return EXIT_CODES.get(rc, "rsync failed with exit code %d" % rc)


def run_rsync(argv, env=None, clock=time.monotonic):
    """Run rsync; returns (rc, stats, items, deletions, other stdout lines, stderr, elapsed_s)."""
    started = clock()
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=command_environment() if env is None else env)
    errors = Collector(process.stderr)
    items = deletions = 0
    other = []
    for raw in process.stdout:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if line.startswith(ITEM_PREFIX):
            new_items, new_deletions = count_changes([line])
            items, deletions = items + new_items, deletions + new_deletions
        elif len(other) < 200:
            other.append(line)
    process.stdout.close()
    rc = process.wait()
    return rc, parse_stats("\n".join(other)), items, deletions, other, errors.text(), round(clock() - started, 3)


def run_account_sync(params, check_mode=False, key_root=KEY_ROOT, rsync="rsync", env=None):
    """What account_sync does; raises TransferError (TransferInputError before anything runs)."""
    transfer_id = check_transfer_id(params["transfer_id"])
    peer = check_peer(params["peer"])
    port = check_port(params.get("port", 22))
    source_path = check_directory(params["source_path"], "source_path")
    target_path = check_directory(params.get("target_path") or source_path, "target_path")
    bandwidth = check_bandwidth(params.get("bandwidth_limit"))
    if not os.path.isdir(source_path) or os.path.islink(source_path):
        raise TransferInputError("source_path %s is not a directory on this server." % source_path)
    paths = key_paths(transfer_id, key_root)
    require_key(paths, transfer_id)
    argv = rsync_command(paths, peer, source_path, target_path, port, params.get("delete", True), bandwidth,
                         check_mode, rsync)
    rc, stats, items, deletions, other, stderr, elapsed = run_rsync(argv, env)
    result = dict(rc=rc, cmd=argv, stats=stats, changes=items, deleted=max(deletions, stats.get("deleted", 0)),
                  elapsed_s=elapsed, source_path=source_path, target_path=target_path, peer=peer)
    result["changed"] = bool(items or stats.get("transferred") or stats.get("deleted"))
    if rc == 24 and params.get("ignore_vanished"):
        result["warnings"] = ["rsync exit 24: %s; run the sync again once the account is frozen." % exit_sentence(24)]
    elif rc != 0:
        raise TransferError("Copying %s to %s:%s failed (rsync exit %d): %s. %s" % (
            source_path, peer, target_path, rc, exit_sentence(rc), first_lines(stderr)),
            stderr=stderr, stdout_lines=other, **result)
    return result
