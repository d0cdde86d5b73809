# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The source side's key pair of one transfer, and the known_hosts file that pins the target."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import shutil
import subprocess

from ansible_collections.hosting.migration.plugins.module_utils.transfer import (
    COMMENT_PREFIX, HOST_KEY_TYPES, KEY_ROOT, TransferError, check_peer, check_port,
    check_transfer_id, ensure_directory, ensure_file, key_paths, known_hosts_host, parse_public_key,
    read_bytes, ssh_base_command)

TRANSFER_KEY_ARGUMENT_SPEC = dict(
    transfer_id=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    peer=dict(type="str"),
    peer_host_key=dict(type="str", no_log=False),
    port=dict(type="int", default=22),
)
TRANSFER_KEY_MODULE_KWARGS = dict(
    argument_spec=TRANSFER_KEY_ARGUMENT_SPEC,
    required_if=[("state", "present", ("peer", "peer_host_key"))],
    supports_check_mode=True,
)


def known_hosts_line(peer, peer_host_key, port=22):
    """One known_hosts line: the peer's address (with the port unless 22) and its host key."""
    key_type, key_data = parse_public_key(peer_host_key, "peer_host_key", HOST_KEY_TYPES)
    return "%s %s %s\n" % (known_hosts_host(check_peer(peer), check_port(port)), key_type, key_data)


def _run(argv):
    process = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, check=False)
    if process.returncode != 0:
        raise TransferError("%s failed (exit %d): %s" % (argv[0], process.returncode,
                                                         (process.stderr or process.stdout).strip()[:500]),
                            cmd=argv, rc=process.returncode)
    return process.stdout


def ensure_key_pair(paths, transfer_id, check_mode=False, run=_run):
    """Make the ed25519 pair if it is missing; fix modes; rebuild a lost public half. True if changed."""
    changed = False
    key, public = paths["key_path"], paths["public_key_path"]
    comment = COMMENT_PREFIX + transfer_id
    if not os.path.isfile(key):
        if check_mode:
            return True
        for stale in (key, public):
            if os.path.lexists(stale):
                os.unlink(stale)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", key])
        changed = True
    if os.stat(key).st_mode & 0o7777 != 0o600:
        if check_mode:
            return True  # ssh-keygen would not read the key as it is
        os.chmod(key, 0o600)
        changed = True
    derived = run(["ssh-keygen", "-y", "-f", key]).split()
    if len(derived) < 2 or derived[0] != "ssh-ed25519":
        raise TransferError("%s is not an ed25519 private key; remove the directory %s (state=absent) and "
                            "run again." % (key, paths["directory"]))
    wanted = ("%s %s %s\n" % (derived[0], derived[1], comment)).encode("ascii")
    current = read_bytes(public)
    if current is None or current.split()[:2] != wanted.split()[:2]:
        changed = ensure_file(public, wanted, 0o644, check_mode) or changed
    else:
        changed = ensure_file(public, current, 0o644, check_mode) or changed
    return changed


def public_key_of(paths):
    data = read_bytes(paths["public_key_path"])
    return data.decode("ascii").strip() if data else None


def run_transfer_key(params, check_mode=False, key_root=KEY_ROOT, run=_run):
    """What transfer_key does; raises TransferError (TransferInputError before any change)."""
    transfer_id = check_transfer_id(params["transfer_id"])
    paths = key_paths(transfer_id, key_root)
    result = dict(changed=False, transfer_id=transfer_id, directory=paths["directory"], key_path=paths["key_path"],
                  public_key_path=paths["public_key_path"], known_hosts_path=paths["known_hosts_path"],
                  public_key=None)
    if params.get("state", "present") == "absent":
        if os.path.lexists(paths["directory"]):
            if not check_mode:
                shutil.rmtree(paths["directory"])
            result["changed"] = True
        return result
    port = check_port(params.get("port", 22))
    peer = check_peer(params.get("peer"))
    known_hosts = known_hosts_line(peer, params.get("peer_host_key"), port).encode("ascii")
    changed = False
    parent = os.path.dirname(key_root)
    if not os.path.isdir(parent):
        changed = ensure_directory(parent, 0o700, check_mode) or changed
    changed = ensure_directory(key_root, 0o700, check_mode) or changed
    changed = ensure_directory(paths["directory"], 0o700, check_mode) or changed
    if os.path.isdir(paths["directory"]):
        changed = ensure_key_pair(paths, transfer_id, check_mode, run) or changed
        changed = ensure_file(paths["known_hosts_path"], known_hosts, 0o600, check_mode) or changed
    else:
        changed = True
    result.update(changed=changed, public_key=public_key_of(paths), peer=peer, port=port,
                  known_hosts=known_hosts.decode("ascii").strip(),
                  ssh_command=ssh_base_command(paths, port) + ["root@" + peer])
    return result
