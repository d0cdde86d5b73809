# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Server-to-server transfers: names, paths, checks on input and the SSH command both sides share.

A transfer moves data from a source server S to a target server T over SSH, with a key pair made
on S for this transfer only (``transfer_keys``), allowed on T for a few named operations until it
expires (``transfer_authorized``, checked on T by ``transfer_endpoint``), and used by rsync
(``transfer_rsync``) and by database dumps streamed into restores (``transfer_stream``).
``docs/transfer.md`` describes the security model.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import ipaddress
import os
import re
import struct
import tempfile
import threading

from ansible_collections.hosting.migration.plugins.module_utils.transfer_endpoint import SCRATCH_PREFIX

KEY_ROOT = "/root/.ssh/hosting-migration"
AUTHORIZED_KEYS = "/root/.ssh/authorized_keys"
CONFIG_DIR = "/etc/hosting/transfers"
ENDPOINT_PATH = "/usr/local/lib/hosting-migration/transfer-endpoint"
LOG_PATH = "/var/log/hosting-migration-transfers.log"
COMMENT_PREFIX = "hosting-migration:"
KEY_NAME = "id_ed25519"
KNOWN_HOSTS_NAME = "known_hosts"

TRANSFER_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
HOSTNAME_RE = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                         r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")
PATH_RE = re.compile(r"(?:/[A-Za-z0-9._+@-]+)+")
DATABASE_RE = re.compile(r"[a-z0-9_]{1,63}")
HOST_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
                  "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")
SYSTEM_DATABASES = frozenset(["mysql", "information_schema", "performance_schema", "sys",
                              "postgres", "template0", "template1"])
ENGINES = ("mariadb", "postgresql")
# Directories a transfer may never write into (nor below): the system, root's home and keys.
FORBIDDEN_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc",
                   "/root", "/run", "/sbin", "/sys", "/usr", "/var/lib", "/var/log", "/var/spool/cron")
# Whatever the user's ssh_config says, these hold (the first value of an option wins in ssh).
SSH_OPTIONS = ("BatchMode=yes", "StrictHostKeyChecking=yes", "IdentitiesOnly=yes", "CheckHostIP=no",
               "GlobalKnownHostsFile=/dev/null", "UpdateHostKeys=no", "ConnectTimeout=30",
               "ServerAliveInterval=15", "ServerAliveCountMax=4",
               "Ciphers=aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com")


class TransferError(Exception):
    """A failure with a sentence a person can act on; ``details`` go into the module's result."""

    def __init__(self, message, **details):
        super(TransferError, self).__init__(message)
        self.details = details


class TransferInputError(TransferError, ValueError):
    """Bad input, found before anything is changed."""


# ---------------------------------------------------------------------------------------------
# Checks on input


def check_transfer_id(value):
    if not isinstance(value, str) or not TRANSFER_ID_RE.fullmatch(value):
        raise TransferInputError(
            "transfer_id %r is not valid: use 1 to 40 lower-case letters, digits and '-', starting with "
            "a letter or digit (for example move-12-alice)." % (value,))
    return value


def check_peer(value, field="peer"):
    """A host name or an IP address, as ssh and known_hosts will see it."""
    text = str(value or "").strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    if HOSTNAME_RE.fullmatch(text) and not text.replace(".", "").isdigit():
        return text.rstrip(".").lower()
    raise TransferInputError("%s %r is neither an IP address nor a host name." % (field, value))


def check_port(value):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise TransferInputError("port %r is not a TCP port (1 to 65535)." % (value,))
    return value


def check_source_addresses(values):
    """The addresses the source connects from, for ``from=`` (single IPv4/IPv6 addresses only)."""
    if isinstance(values, str):
        values = [values]
    result = []
    for value in values or []:
        try:
            address = str(ipaddress.ip_address(str(value).strip()))
        except ValueError:
            raise TransferInputError(
                "source %r is not an IP address: give the address(es) the source server connects from "
                "(host names and networks are not accepted)." % (value,))
        if address not in result:
            result.append(address)
    if not result:
        raise TransferInputError("source is empty: give the address(es) the source server connects from.")
    return result


def check_directory(value, field):
    """An absolute path made of plain names, without '.', '..', '//' or a trailing '/' (removed)."""
    text = str(value or "")
    if len(text) > 1 and text.endswith("/"):
        text = text.rstrip("/")
    parts = text.split("/")[1:]
    if not PATH_RE.fullmatch(text) or any(part in (".", "..") for part in parts) or len(text) > 1024:
        raise TransferInputError(
            "%s %r is not a plain absolute path (only letters, digits and . _ + @ - in each part, no '.' "
            "or '..' parts)." % (field, value))
    if len(parts) < 2:
        raise TransferInputError("%s %r is too close to the root: a transfer needs a directory at least two "
                                 "levels deep (for example /home/alice)." % (field, value))
    for tree in FORBIDDEN_TREES:
        if text == tree or text.startswith(tree + "/"):
            raise TransferInputError("%s %r is under %s, where a transfer may never write." % (field, value, tree))
    return text


def check_database(engine, name, field="database"):
    if engine not in ENGINES:
        raise TransferInputError("%s engine %r is not one of %s." % (field, engine, ", ".join(ENGINES)))
    if not isinstance(name, str) or not DATABASE_RE.fullmatch(name):
        raise TransferInputError("%s name %r is not valid: 1 to 63 lower-case letters, digits and '_'." % (field, name))
    if name in SYSTEM_DATABASES:
        raise TransferInputError("%s %r is a system database; only account databases can be copied." % (field, name))
    if name.startswith(SCRATCH_PREFIX):
        raise TransferInputError("%s %r starts with %s, the prefix of the test imports' scratch databases; "
                                 "no account database may." % (field, name, SCRATCH_PREFIX))
    return name


def _ssh_blob_type(blob):
    """The key type named at the start of an SSH public key blob."""
    if len(blob) < 4:
        return None
    length = struct.unpack(">I", blob[:4])[0]
    return blob[4:4 + length].decode("ascii", "replace") if 4 + length <= len(blob) else None


def parse_public_key(text, field="public_key", types=("ssh-ed25519",)):
    """(type, base64) of an OpenSSH public key line; comment and options are not accepted here."""
    fields = str(text or "").strip().split()
    if len(fields) < 2 or fields[0] not in types:
        raise TransferInputError("%s is not an OpenSSH public key of type %s (got %r)."
                                 % (field, " or ".join(types), str(text or "")[:60]))
    try:
        blob = base64.b64decode(fields[1].encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise TransferInputError("%s: the key data is not valid base64." % field)
    if _ssh_blob_type(blob) != ("ssh-rsa" if fields[0].startswith("rsa-sha2") else fields[0]):
        raise TransferInputError("%s: the key data does not hold a %s key." % (field, fields[0]))
    return fields[0], fields[1]


# ---------------------------------------------------------------------------------------------
# Where a transfer's key lives on the source, and how ssh is called with it


def key_paths(transfer_id, key_root=KEY_ROOT):
    directory = os.path.join(key_root, check_transfer_id(transfer_id))
    return dict(directory=directory,
                key_path=os.path.join(directory, KEY_NAME),
                public_key_path=os.path.join(directory, KEY_NAME + ".pub"),
                known_hosts_path=os.path.join(directory, KNOWN_HOSTS_NAME))


def known_hosts_host(peer, port=22):
    return peer if port == 22 else "[%s]:%d" % (peer, port)


def ssh_base_command(paths, port=22):
    """ssh with the transfer's key and known_hosts only, no user or system configuration."""
    argv = ["ssh", "-F", "/dev/null", "-i", paths["key_path"],
            "-o", "UserKnownHostsFile=%s" % paths["known_hosts_path"]]
    for option in SSH_OPTIONS:
        argv += ["-o", option]
    if port != 22:
        argv += ["-p", str(port)]
    return argv


def require_key(paths, transfer_id):
    missing = [paths[name] for name in ("key_path", "known_hosts_path") if not os.path.isfile(paths[name])]
    if missing:
        raise TransferInputError(
            "The key of transfer %s is not on this server (%s missing): run hosting.migration.transfer_key "
            "with state=present first." % (transfer_id, ", ".join(missing)))


# ---------------------------------------------------------------------------------------------
# Files


def read_bytes(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_atomic(path, data, mode, like=None):
    """Replace ``path`` by ``data`` in one rename; owner and mode of ``like`` (an os.stat) if given."""
    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        os.fchmod(handle, like.st_mode & 0o7777 if like is not None else mode)
        if like is not None and os.geteuid() == 0:
            os.fchown(handle, like.st_uid, like.st_gid)
        write_all(handle, data)
        os.fsync(handle)
    except BaseException:
        os.close(handle)
        os.unlink(temporary)
        raise
    os.close(handle)
    os.replace(temporary, path)
    _fsync_directory(directory)


def write_all(handle, data):
    """os.write until every byte of ``data`` is written to the file descriptor ``handle``."""
    view = memoryview(data)
    while view:
        view = view[os.write(handle, view):]


def _fsync_directory(directory):
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def ensure_directory(path, mode, check_mode=False):
    """Create ``path`` (and parents) or fix its mode; True if something changed (or would)."""
    try:
        current = os.lstat(path)
    except FileNotFoundError:
        if not check_mode:
            os.makedirs(path, mode)
            os.chmod(path, mode)
        return True
    if not os.path.isdir(path) or os.path.islink(path):
        raise TransferError("%s exists and is not a directory." % path)
    if current.st_mode & 0o7777 != mode:
        if not check_mode:
            os.chmod(path, mode)
        return True
    return False


def ensure_file(path, data, mode, check_mode=False):
    """Write ``data`` to ``path`` with ``mode`` unless it already holds exactly that; True if changed."""
    current = read_bytes(path)
    if current == data and os.stat(path).st_mode & 0o7777 == mode:
        return False
    if not check_mode:
        if current == data:
            os.chmod(path, mode)
        else:
            write_atomic(path, data, mode)
    return True


class Collector(object):
    """Reads a pipe to its end in a thread, keeping the first ``limit`` bytes (so no child ever blocks)."""

    def __init__(self, stream, limit=65536):
        self.stream, self.limit, self.data, self.total = stream, limit, b"", 0
        self.thread = threading.Thread(target=self._read)
        self.thread.daemon = True
        self.thread.start()

    def _read(self):
        while True:
            chunk = self.stream.read(65536)
            if not chunk:
                break
            self.total += len(chunk)
            if len(self.data) < self.limit:
                self.data += chunk[:self.limit - len(self.data)]
        self.stream.close()

    def text(self):
        self.thread.join()
        return self.data.decode("utf-8", "replace")


def first_lines(text, count=5):
    """The first ``count`` non-empty lines of ``text`` joined by ' / ', for a one-line message."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    more = " / ..." if len(lines) > count else ""
    return " / ".join(lines[:count]) + more


def command_environment(environ=None):
    """A small, predictable environment for rsync, ssh and the dump tools (C locale, no RSYNC_*)."""
    environ = os.environ if environ is None else environ
    return dict(PATH=environ.get("PATH") or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                HOME=environ.get("HOME") or "/root", LC_ALL="C", LANG="C")
