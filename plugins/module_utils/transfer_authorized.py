# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The target side of a transfer: its line in root's authorized_keys, what it allows, the endpoint."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import datetime
import fcntl
import inspect
import json
import os
import time

from ansible_collections.hosting.migration.plugins.module_utils import transfer_endpoint
from ansible_collections.hosting.migration.plugins.module_utils.transfer import (
    AUTHORIZED_KEYS, COMMENT_PREFIX, CONFIG_DIR, ENDPOINT_PATH, LOG_PATH, TransferError, TransferInputError,
    check_database, check_directory, check_source_addresses, check_transfer_id, ensure_directory, ensure_file,
    parse_public_key, read_bytes, write_atomic)

TRANSFER_AUTHORIZATION_ARGUMENT_SPEC = dict(
    transfer_id=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    public_key=dict(type="str", no_log=False),
    source=dict(type="list", elements="str"),
    allow=dict(type="list", elements="dict"),
    valid_for_s=dict(type="int", default=3600),
)
TRANSFER_AUTHORIZATION_MODULE_KWARGS = dict(
    argument_spec=TRANSFER_AUTHORIZATION_ARGUMENT_SPEC,
    required_if=[("state", "present", ("public_key", "source", "allow"))],
    supports_check_mode=True,
)
MIN_VALID_S, MAX_VALID_S = 60, 7 * 86400
DEFAULT_PATHS = dict(authorized_keys=AUTHORIZED_KEYS, config_dir=CONFIG_DIR, endpoint_path=ENDPOINT_PATH,
                     log_path=LOG_PATH)
OPERATIONS = transfer_endpoint.OPERATIONS


# ---------------------------------------------------------------------------------------------
# The authorized_keys line


def expiry(now, valid_for_s):
    """(epoch, sshd's expiry-time) of a key valid for ``valid_for_s`` from ``now``, rounded up to the minute."""
    if isinstance(valid_for_s, bool) or not isinstance(valid_for_s, int) \
            or not MIN_VALID_S <= valid_for_s <= MAX_VALID_S:
        raise TransferInputError("valid_for_s %r must be between %d and %d seconds."
                                 % (valid_for_s, MIN_VALID_S, MAX_VALID_S))
    epoch = -(-int(now + valid_for_s) // 60) * 60
    return epoch, expiry_time(epoch)


def expiry_time(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y%m%d%H%MZ")


def iso_utc(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def endpoint_command(transfer_id, paths=None):
    paths = paths or DEFAULT_PATHS
    words = [paths["endpoint_path"]]
    if paths["config_dir"] != CONFIG_DIR:
        words += ["--config-dir", paths["config_dir"]]
    if paths["log_path"] != LOG_PATH:
        words += ["--log-file", paths["log_path"]]
    return " ".join(words + [check_transfer_id(transfer_id)])


def authorized_line(transfer_id, public_key, sources, expires_epoch, paths=None):
    """from="S",restrict,expiry-time="YYYYMMDDHHMMZ",command="ENDPOINT ID" TYPE KEY hosting-migration:ID"""
    key_type, key_data = parse_public_key(public_key)
    return 'from="%s",restrict,expiry-time="%s",command="%s" %s %s %s%s' % (
        ",".join(check_source_addresses(sources)), expiry_time(expires_epoch),
        endpoint_command(transfer_id, paths), key_type, key_data, COMMENT_PREFIX, transfer_id)


def _is_transfer_line(line, comment):
    words = line.rstrip(b"\r\n").split()
    return bool(words) and words[-1] == comment and not line.lstrip().startswith(b"#")


def find_line(data, transfer_id):
    comment = (COMMENT_PREFIX + transfer_id).encode("ascii")
    for line in (data or b"").splitlines():
        if _is_transfer_line(line, comment):
            return line.decode("utf-8", "replace")
    return None


def parse_expiry(line):
    """The epoch of the expiry-time="YYYYMMDDHHMMZ" of one of our lines, or None."""
    marker = 'expiry-time="'
    start = (line or "").find(marker)
    if start < 0:
        return None
    text = line[start + len(marker):start + len(marker) + 13]
    try:
        moment = datetime.datetime.strptime(text, "%Y%m%d%H%MZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    return int(moment.timestamp())


def edit_authorized_keys(data, transfer_id, new_line=None):
    """``data`` without the transfer's line(s), plus ``new_line`` at the end; other bytes untouched."""
    comment = (COMMENT_PREFIX + check_transfer_id(transfer_id)).encode("ascii")
    kept = [line for line in (data or b"").splitlines(True) if not _is_transfer_line(line, comment)]
    result = b"".join(kept)
    if new_line is not None:
        if result and not result.endswith(b"\n"):
            result += b"\n"
        result += new_line.encode("ascii") + b"\n"
    return result


class _Lock(object):
    """An exclusive lock on CONFIG_DIR/.lock, so that parallel transfers do not lose each other's lines."""

    def __init__(self, config_dir):
        self.path = os.path.join(config_dir, ".lock")
        self.handle = None

    def __enter__(self):
        self.handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.handle)


def update_authorized_keys(path, transfer_id, new_line=None, check_mode=False):
    """Put ``new_line`` in place of the transfer's line (or only remove it); True if the file changed."""
    path = os.path.realpath(path)
    current = read_bytes(path)
    wanted = edit_authorized_keys(current, transfer_id, new_line)
    if (current or b"") == wanted:
        return False
    if not check_mode:
        if current is None:
            if not os.path.isdir(os.path.dirname(path)):
                ensure_directory(os.path.dirname(path), 0o700)
            write_atomic(path, wanted, 0o600)
        else:
            write_atomic(path, wanted, 0o600, like=os.stat(path))
    return True


# ---------------------------------------------------------------------------------------------
# What the transfer allows


def check_allow(allow):
    """The normalised list of operations: [{rsync_to: DIR} | {mariadb_restore: DB} | {postgresql_restore: DB}
    | {mariadb_test: DB} | {postgresql_test: DB}]."""
    if not allow:
        raise TransferInputError("allow is empty: name what the key may do (%s)." % ", ".join(OPERATIONS))
    result = []
    for index, entry in enumerate(allow):
        field = "allow[%d]" % index
        if not isinstance(entry, dict) or len(entry) != 1 or list(entry)[0] not in OPERATIONS:
            raise TransferInputError("%s must be a dict with exactly one of %s (got %r)."
                                     % (field, ", ".join(OPERATIONS), entry))
        operation, value = list(entry.items())[0]
        if operation == "rsync_to":
            value = check_directory(value, field + ".rsync_to")
            try:
                transfer_endpoint.check_real_directory(value)
            except transfer_endpoint.Refused as refusal:
                raise TransferInputError("%s: %s." % (field, refusal))
            if not os.path.isdir(os.path.dirname(value)):
                raise TransferInputError("%s: the parent directory of %s does not exist on this server (rsync makes "
                                         "only the last level)." % (field, value))
        else:
            value = check_database(operation.split("_")[0], value, field + "." + operation)
        if {operation: value} not in result:
            result.append({operation: value})
    return result


def transfer_config(transfer_id, sources, allow, expires_epoch):
    return dict(transfer_id=transfer_id, source=check_source_addresses(sources), allow=allow,
                expires=expires_epoch, expires_utc=iso_utc(expires_epoch))


def config_bytes(config):
    return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode("ascii")


def render_endpoint():
    """The endpoint script as written to the target: the transfer_endpoint module run as a program."""
    try:
        source = inspect.getsource(transfer_endpoint)
    except (OSError, TypeError) as error:
        raise TransferError("Cannot read the endpoint's source from the module payload: %s" % error)
    return ("#!/usr/bin/python3 -I\n" + source.rstrip("\n")
            + "\n\n\nif __name__ == \"__main__\":\n    sys.exit(main())\n").encode("utf-8")


# ---------------------------------------------------------------------------------------------
# The module


def run_transfer_authorization(params, check_mode=False, diff=False, now=None, paths=None):
    """What transfer_authorization does; raises TransferError (TransferInputError before any change)."""
    paths = dict(DEFAULT_PATHS, **(paths or {}))
    now = time.time() if now is None else now
    transfer_id = check_transfer_id(params["transfer_id"])
    config_path = os.path.join(paths["config_dir"], transfer_id + ".json")
    present = params.get("state", "present") == "present"
    result = dict(changed=False, transfer_id=transfer_id, config_path=config_path,
                  endpoint_path=paths["endpoint_path"], authorized_keys=paths["authorized_keys"])
    new_line = None
    if present:
        valid_for_s = params.get("valid_for_s", 3600)
        expires_epoch = expiry(now, valid_for_s)[0]
        sources = check_source_addresses(params.get("source"))
        allow = check_allow(params.get("allow"))
        old_line = find_line(read_bytes(paths["authorized_keys"]), transfer_id)
        old_expiry = parse_expiry(old_line)
        if old_expiry is not None and old_expiry - now >= valid_for_s / 2.0 \
                and old_line == authorized_line(transfer_id, params.get("public_key"), sources, old_expiry, paths):
            expires_epoch = old_expiry
        new_line = authorized_line(transfer_id, params.get("public_key"), sources, expires_epoch, paths)
        config = transfer_config(transfer_id, sources, allow, expires_epoch)
        endpoint_data = render_endpoint()
        result.update(authorized_keys_line=new_line, expires=iso_utc(expires_epoch),
                      expiry_time=expiry_time(expires_epoch), source=sources, allow=allow)
    else:
        old_line = find_line(read_bytes(paths["authorized_keys"]), transfer_id)
    changed = False
    if present:
        changed = ensure_directory(paths["config_dir"], 0o700, check_mode) or changed
        endpoint_dir = os.path.dirname(paths["endpoint_path"])
        changed = ensure_directory(endpoint_dir, 0o755, check_mode) or changed
        if os.path.isdir(endpoint_dir):
            changed = ensure_file(paths["endpoint_path"], endpoint_data, 0o755, check_mode) or changed
    old_config = read_bytes(config_path)
    if present:
        # The endpoint and the config first: a connection that finds the line finds them too.
        if os.path.isdir(paths["config_dir"]):
            changed = ensure_file(config_path, config_bytes(config), 0o600, check_mode) or changed
        else:
            changed = True
    if check_mode or not os.path.isdir(paths["config_dir"]):
        changed = update_authorized_keys(paths["authorized_keys"], transfer_id, new_line, check_mode) or changed
    else:
        with _Lock(paths["config_dir"]):
            changed = update_authorized_keys(paths["authorized_keys"], transfer_id, new_line) or changed
    if not present and old_config is not None:
        if not check_mode:
            os.unlink(config_path)
        changed = True
    result["changed"] = changed
    if diff:
        result["diff"] = dict(
            before_header="%s (%s%s) and %s" % (paths["authorized_keys"], COMMENT_PREFIX, transfer_id, config_path),
            after_header="%s (%s%s) and %s" % (paths["authorized_keys"], COMMENT_PREFIX, transfer_id, config_path),
            before=(old_line + "\n" if old_line else "") + (old_config or b"").decode("ascii", "replace"),
            after=(new_line + "\n" + config_bytes(config).decode("ascii")) if present else "")
    return result
