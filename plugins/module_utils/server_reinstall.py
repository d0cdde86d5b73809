# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reinstalling a server at another infrastructure version, and learning its new SSH host key
through a trusted path (``docs/reinstall.md``).

A driver recreates the server and says what its new host key is: ``LabDriver`` recreates a lab
server's podman container and reads the key from inside it, ``CommandDriver`` runs the
operator's own script and takes the key from its output, or from the network only when it
matches a fingerprint the operator gave. ``reinstall`` then pins that key in the controller's
known_hosts file (the server's old lines replaced, every other line kept) and waits until SSH
answers with it. Standard library only; commands run through a runner and time comes from a
clock, so the tests record every call.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import binascii
import fcntl
import hashlib
import hmac
import os
import re
import shlex
import signal
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Optional

HOST_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")
# What ssh must negotiate so that the server proves the key we pinned, and no other.
HOST_KEY_ALGORITHMS = {"ssh-rsa": "rsa-sha2-512,rsa-sha2-256"}
# Whatever the user's ssh_args say, these hold (the first value of an option wins in ssh). A
# master connection of Ansible's to the old system must not stand in for the new one.
SSH_OPTIONS = ("BatchMode=yes", "StrictHostKeyChecking=yes", "GlobalKnownHostsFile=/dev/null",
               "CheckHostIP=no", "UpdateHostKeys=no", "ControlMaster=no", "ControlPath=none",
               "ConnectTimeout=5")
HOST_KEY_LINE_RE = re.compile(r"^host-key:\s*(\S+\s+\S+)", re.MULTILINE)
FINGERPRINT_RE = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
# Container and host names: no leading dash, so no value can pass for a podman option.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
IMAGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/@-]*")
LAB_HOST_KEY = "/etc/ssh/ssh_host_ed25519_key.pub"
POLL_S = 1.0

SERVER_REINSTALL_ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    version=dict(type="str", required=True),
    driver=dict(type="str", default="lab", choices=["lab", "command"]),
    address=dict(type="str"),
    port=dict(type="int", default=22),
    known_hosts=dict(type="path", required=True),
    private_key=dict(type="path"),
    ssh_args=dict(type="str", default=""),
    ssh_user=dict(type="str", default="root"),
    timeout_s=dict(type="int", default=300),
    image=dict(type="str"),
    image_prefix=dict(type="str", default="localhost/hosting-lab"),
    network=dict(type="str"),
    ipv4=dict(type="str"),
    ipv6=dict(type="str"),
    mac=dict(type="str"),
    hostname=dict(type="str"),
    labels=dict(type="dict", default={"hosting.lab": "server"}),
    capabilities=dict(type="list", elements="str", default=["NET_ADMIN", "NET_RAW"]),
    stop_timeout_s=dict(type="int", default=10),
    authorized_key=dict(type="str", no_log=False),
    command=dict(type="path"),
    command_timeout_s=dict(type="int", default=3600),
    host_key_fingerprint=dict(type="str", no_log=False),
    resume=dict(type="bool", default=False),
)


class ReinstallError(Exception):
    """A reinstall that failed, as one plain sentence; ``details`` go to the module's result."""

    def __init__(self, message, **details):
        super(ReinstallError, self).__init__(message)
        self.details = details


class ReinstallRefused(ReinstallError):
    """Refused before anything was changed."""


# --- host keys ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class HostKey:
    key_type: str
    key_data: str

    @property
    def line(self):
        return "%s %s" % (self.key_type, self.key_data)

    @property
    def fingerprint(self):
        return key_fingerprint(self.key_data)


def key_fingerprint(key_data):
    """OpenSSH's SHA256 fingerprint of a public key (as ``ssh-keygen -lf`` prints it)."""
    digest = hashlib.sha256(base64.b64decode(key_data)).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def parse_host_key(text, where):
    """The HostKey of ``type base64 [comment]``; a ReinstallError naming ``where`` otherwise."""
    fields = str(text or "").split()
    if len(fields) < 2 or fields[0] not in HOST_KEY_TYPES:
        raise ReinstallError("%s is not an SSH public host key of type %s (got %r)."
                             % (where, ", ".join(HOST_KEY_TYPES), str(text or "")[:80]))
    try:
        blob = base64.b64decode(fields[1].encode("ascii"), validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        blob_type = blob[4:4 + length].decode("ascii")
    except (ValueError, UnicodeError, struct.error, binascii.Error):
        blob_type = None
    if blob_type != fields[0]:
        raise ReinstallError("%s: the key data does not hold a %s key." % (where, fields[0]))
    return HostKey(fields[0], fields[1])


def known_hosts_name(address, port=22):
    return address if port == 22 else "[%s]:%d" % (address, port)


def _hashed_match(entry, name):
    """Whether a hashed known_hosts entry (``|1|salt|hash``) stands for ``name``."""
    parts = entry.split("|")
    if len(parts) != 4 or parts[1] != "1":
        return False
    try:
        salt, wanted = base64.b64decode(parts[2]), base64.b64decode(parts[3])
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(hmac.new(salt, name.encode("utf-8"), hashlib.sha1).digest(), wanted)


def replace_known_host(text, names, host_key):
    """known_hosts ``text`` with every entry of ``names`` (the first is where SSH reaches the
    server) replaced by one line per name with ``host_key``. Other hosts' lines, comments and
    markers (@cert-authority, @revoked) stay byte for byte; a line naming several hosts keeps
    the others; the new lines take the place of the first old one. Returns (new text, number of
    old entries removed)."""
    kept, removed, found, at = [], 0, set(), None
    for line in text.splitlines(True):
        fields = line.split(None, 1)
        if not fields or fields[0].startswith("#") or fields[0].startswith("@") or len(fields) < 2:
            kept.append(line)
            continue
        hosts = fields[0].split(",")
        others = []
        for entry in hosts:
            hits = [name for name in names if entry == name or _hashed_match(entry, name)]
            found.update(hits)
            if not hits:
                others.append(entry)
        if len(others) == len(hosts):
            kept.append(line)
            continue
        removed += 1
        at = len(kept) if at is None else at
        if others:
            kept.append(",".join(others) + " " + fields[1])
    if kept and not kept[-1].endswith("\n"):
        kept[-1] += "\n"
    wanted = [names[0]] + [name for name in names[1:] if name in found]
    at = len(kept) if at is None else at
    kept[at:at] = ["%s %s\n" % (name, host_key.line) for name in wanted]
    return "".join(kept), removed


def pinned_fingerprints(path, name):
    """Fingerprints of the keys the known_hosts file at ``path`` holds for ``name`` now."""
    try:
        with open(path, "r") as handle:
            text = handle.read()
    except FileNotFoundError:
        return set()
    found = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0].startswith("#") or fields[0].startswith("@"):
            continue
        if any(entry == name or _hashed_match(entry, name) for entry in fields[0].split(",")):
            try:
                found.add(parse_host_key(" ".join(fields[1:3]), "known_hosts").fingerprint)
            except ReinstallError:
                continue
    return found


def pin_host_key(path, names, host_key):
    """Replace the server's lines in the known_hosts file at ``path``, in one rename under a lock
    on its directory (lab-up and other runs write the same file). True if the file changed."""
    directory = os.path.dirname(os.path.abspath(path))
    lock = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(path, "r") as handle:
                before = handle.read()
            mode = os.stat(path).st_mode & 0o7777
        except FileNotFoundError:
            before, mode = "", 0o600
        after, dummy = replace_known_host(before, names, host_key)
        if after == before:
            return False
        fd, temporary = tempfile.mkstemp(prefix=".known_hosts.", dir=directory)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(after)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, mode)
            os.replace(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise
        return True
    finally:
        os.close(lock)


# --- commands and time ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CommandResult:
    rc: Optional[int]
    stdout: str
    stderr: str
    timed_out: bool = False

    def why(self):
        """The last line of what the command said, for an error message."""
        lines = (self.stderr or self.stdout or "").strip().splitlines()
        return lines[-1][:300] if lines else "no output"


class Runner:
    """Runs a command without a shell; a command that outlives ``timeout`` is killed with its
    whole process group (an operator's script may have started others)."""

    def run(self, argv, timeout=None):
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   universal_newlines=True, start_new_session=True)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            stdout, stderr = process.communicate()
            return CommandResult(None, stdout, stderr, timed_out=True)
        return CommandResult(process.returncode, stdout, stderr)


class Clock:
    def now(self):
        return time.monotonic()

    def sleep(self, seconds):
        time.sleep(seconds)


# --- drivers -----------------------------------------------------------------------------------

class ReinstallDriver:
    """What a way of reinstalling offers. A provider's driver subclasses it and is added to
    DRIVERS; ``params`` are the module's options."""

    name = ""

    def __init__(self, params, runner, clock):
        self.params = params
        self.runner = runner
        self.clock = clock
        self.server = params["name"]

    def check(self):
        """Raise ReinstallRefused for anything that would stop the reinstall; change nothing."""

    def plan(self):
        """What ``recreate`` and ``host_key`` would do, one sentence each."""
        return []

    def recreate(self):
        """Reinstall the server (the destructive step); return when its new system boots."""
        raise NotImplementedError

    def already_reinstalled(self):
        """True when an interrupted run's reinstall demonstrably happened (the server runs the
        target version's new system), so that resuming does not reinstall it a second time."""
        return False

    def host_key(self, deadline):
        """The new system's SSH host key, learned through a path that does not trust the network."""
        raise NotImplementedError

    def _refuse_missing(self, options):
        missing = [option for option in options if not self.params.get(option)]
        if missing:
            raise ReinstallRefused("The %s driver needs %s to reinstall %s; nothing was changed."
                                   % (self.name, ", ".join(missing), self.server))


class LabDriver(ReinstallDriver):
    """A lab server is a podman container on this host: remove it and run it again from the
    target version's image, with the same name, hostname, addresses, MAC and label."""

    name = "lab"

    @property
    def image(self):
        return self.params.get("image") or "%s:%s" % (self.params["image_prefix"], self.params["version"])

    @property
    def authorized_key(self):
        key = self.params.get("authorized_key")
        if not key and self.params.get("private_key"):
            try:
                with open(self.params["private_key"] + ".pub") as handle:
                    key = handle.read()
            except OSError:
                key = None
        return (key or "").strip()

    def check(self):
        self._refuse_missing(("network", "ipv4", "mac"))
        for value, what in ((self.server, "name"), (self.params.get("hostname") or self.server, "hostname"),
                            (self.params["network"], "network")):
            if not NAME_RE.fullmatch(value):
                raise ReinstallRefused("%s %r is not a valid container %s; nothing was changed." % (what, value, what))
        if not IMAGE_RE.fullmatch(self.image):
            raise ReinstallRefused("%r is not an image name; nothing was changed." % self.image)
        if not self.authorized_key:
            raise ReinstallRefused("The lab driver needs authorized_key, or private_key with its .pub next to it, "
                                   "to let the controller in after reinstalling %s; nothing was changed." % self.server)
        parse_host_key(self.authorized_key, "authorized_key")
        if self.runner.run(["podman", "image", "exists", self.image], timeout=60).rc != 0:
            raise ReinstallRefused(
                "The image %s is not in podman, so %s cannot be reinstalled at version %s (build it with "
                "lab/images/build.sh %s); %s was left as it is." % (
                    self.image, self.server, self.params["version"], self.params["version"], self.server))

    def run_argv(self):
        params = self.params
        addressing = ["ip=" + params["ipv4"]] + (["ip=" + params["ipv6"]] if params.get("ipv6") else [])
        addressing.append("mac=" + params["mac"])
        argv = ["podman", "run", "--detach", "--name=" + self.server,
                "--hostname=" + (params.get("hostname") or self.server), "--systemd=always", "--pull=never"]
        if params.get("capabilities"):
            argv.append("--cap-add=" + ",".join(params["capabilities"]))
        argv += ["--label=%s=%s" % (key, value) for key, value in sorted((params.get("labels") or {}).items())]
        argv += ["--network=%s:%s" % (params["network"], ",".join(addressing)), self.image, "/sbin/init"]
        return argv

    def plan(self):
        return ["remove the container %s (podman rm --force)" % self.server,
                "run it again from %s: %s" % (self.image, " ".join(self.run_argv()[2:])),
                "authorise the controller's key for root in it",
                "read its new host key from %s inside the container" % LAB_HOST_KEY]

    def recreate(self):
        removed = self.runner.run(["podman", "rm", "--force", "--ignore", "--time=%d" % self.params["stop_timeout_s"],
                                   self.server], timeout=self.params["stop_timeout_s"] + 60)
        if removed.rc != 0:
            raise ReinstallError("podman could not remove %s: %s; run it again once the cause is fixed."
                                 % (self.server, removed.why()))
        started = self.runner.run(self.run_argv(), timeout=120)
        if started.rc != 0:
            raise ReinstallError("podman could not start %s from %s: %s; the old system is gone, run it again once "
                                 "the cause is fixed." % (self.server, self.image, started.why()))
        # netavark switches forwarding on when a container joins a network; the lab keeps it off.
        self.runner.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"], timeout=30)

    def already_reinstalled(self):
        found = self.runner.run(["podman", "container", "inspect", "--format",
                                 "{{.ImageName}} {{.State.Running}}", self.server], timeout=60)
        return found.rc == 0 and found.stdout.split() == [self.image, "true"]

    def _exec(self, *argv):
        return self.runner.run(["podman", "exec", self.server] + list(argv), timeout=30)

    def host_key(self, deadline):
        key = None
        while key is None:
            found = self._exec("cat", LAB_HOST_KEY)
            if found.rc == 0 and found.stdout.strip():
                key = parse_host_key(found.stdout, "%s in %s" % (LAB_HOST_KEY, self.server))
            elif self.clock.now() >= deadline:
                raise ReinstallError("%s made no SSH host key (%s) within %d s after the reinstall: %s"
                                     % (self.server, LAB_HOST_KEY, self.params["timeout_s"], found.why()))
            else:
                self.clock.sleep(POLL_S / 2)
        # A file of the server's own, as lab-up writes it: transfers add and remove keys in it.
        authorised = self._exec("sh", "-c", 'umask 077; mkdir -p /root/.ssh; grep -qxF "$0" /root/.ssh/authorized_keys '
                                "2>/dev/null || echo \"$0\" >> /root/.ssh/authorized_keys", self.authorized_key)
        if authorised.rc != 0:
            raise ReinstallError("The controller's key could not be authorised in %s: %s"
                                 % (self.server, authorised.why()))
        return key


class CommandDriver(ReinstallDriver):
    """The operator's own script reinstalls (``SCRIPT SERVER VERSION``, no shell); it prints the
    new host key (``host-key: TYPE BASE64``) or the operator gives its fingerprint."""

    name = "command"

    def __init__(self, params, runner, clock):
        super(CommandDriver, self).__init__(params, runner, clock)
        self.printed_key = None

    @property
    def address(self):
        return self.params.get("address") or self.params.get("ipv4")

    def check(self):
        self._refuse_missing(("command",))
        if not self.address:
            raise ReinstallRefused("The command driver needs address (where SSH reaches %s after the reinstall); "
                                   "nothing was changed." % self.server)
        command = self.params["command"]
        if not (os.path.isfile(command) and os.access(command, os.X_OK)):
            raise ReinstallRefused("The reinstall script %s is not an executable file; nothing was changed." % command)
        fingerprint = self.params.get("host_key_fingerprint")
        if fingerprint and not FINGERPRINT_RE.fullmatch(fingerprint):
            raise ReinstallRefused("host_key_fingerprint %r is not an OpenSSH SHA256 fingerprint (SHA256: and 43 "
                                   "base64 characters, as ssh-keygen -lf prints it); nothing was changed." % fingerprint)

    def plan(self):
        fingerprint = self.params.get("host_key_fingerprint")
        return ["run %s %s %s (at most %d s)" % (self.params["command"], self.server, self.params["version"],
                                                 self.params["command_timeout_s"]),
                "take the new host key from the script's 'host-key:' line" + (
                    ", or else from ssh-keyscan of %s only if it matches %s" % (self.address, fingerprint)
                    if fingerprint else " (no host_key_fingerprint given: the script must print it)")]

    def recreate(self):
        timeout = self.params["command_timeout_s"]
        ran = self.runner.run([self.params["command"], self.server, self.params["version"]], timeout=timeout)
        if ran.timed_out:
            raise ReinstallError("The reinstall script %s did not finish within %d s and was stopped; %s may be half "
                                 "reinstalled." % (self.params["command"], timeout, self.server))
        if ran.rc != 0:
            raise ReinstallError("The reinstall script %s failed for %s (exit %d): %s"
                                 % (self.params["command"], self.server, ran.rc, ran.why()),
                                 stdout=ran.stdout[-4000:], stderr=ran.stderr[-4000:])
        printed = {parse_host_key(text, "the script's host-key line") for text in HOST_KEY_LINE_RE.findall(ran.stdout)}
        if len(printed) > 1:
            raise ReinstallError("The reinstall script printed %d different host keys for %s; cannot tell which is "
                                 "the server's." % (len(printed), self.server))
        self.printed_key = printed.pop() if printed else None

    def host_key(self, deadline):
        wanted = self.params.get("host_key_fingerprint")
        if self.printed_key is not None:
            if wanted and self.printed_key.fingerprint != wanted:
                raise ReinstallError("The reinstall script printed a host key with fingerprint %s, not %s given in "
                                     "host_key_fingerprint; nothing was trusted." % (self.printed_key.fingerprint, wanted))
            return self.printed_key
        if not wanted:
            raise ReinstallError("%s was reinstalled, but the script printed no 'host-key:' line and no "
                                 "host_key_fingerprint was given: its new host key cannot be trusted. Give the "
                                 "fingerprint from the provider's console and run again." % self.server)
        return self._scanned_key(wanted, deadline)

    def already_reinstalled(self):
        # Only a key the operator vouched for proves the new system answers; without one the
        # script runs again (the server holds nothing the migration needs: checked before).
        wanted = self.params.get("host_key_fingerprint")
        if not wanted:
            return False
        # The key the old system was pinned with proves nothing: the reinstall may never have run.
        if wanted in pinned_fingerprints(self.params["known_hosts"], known_hosts_name(self.address, self.params["port"])):
            return False
        return any(key.fingerprint == wanted for key in self._scan())

    def _scan(self):
        """The host keys the address answers with now (none when it does not answer)."""
        scan = self.runner.run(["ssh-keyscan", "-T", "5", "-p", str(self.params["port"]), "-t", "ed25519,ecdsa,rsa",
                                self.address], timeout=30)
        keys = []
        for line in (scan.stdout or "").splitlines():
            fields = line.split()
            if len(fields) >= 3 and not fields[0].startswith("#"):
                try:
                    keys.append(parse_host_key(" ".join(fields[1:3]), "ssh-keyscan output"))
                except ReinstallError:
                    continue
        return keys

    def _scanned_key(self, wanted, deadline):
        """A key read from the network, accepted only when its fingerprint is the one given."""
        while True:
            keys = self._scan()
            for key in keys:
                if key.fingerprint == wanted:
                    return key
            if keys:
                raise ReinstallError(
                    "%s answers with host key(s) %s, not %s given in host_key_fingerprint: the fingerprint is wrong, "
                    "the old system still answers, or something else holds the address; nothing was trusted."
                    % (self.address, ", ".join(sorted(key.fingerprint for key in keys)), wanted))
            if self.clock.now() >= deadline:
                raise ReinstallError("%s did not answer on %s within %d s after the reinstall (no host key to compare "
                                     "with %s)." % (self.server, self.address, self.params["timeout_s"], wanted))
            self.clock.sleep(POLL_S)


DRIVERS = {"lab": LabDriver, "command": CommandDriver}


# --- the reinstall -----------------------------------------------------------------------------

def ssh_argv(params, address, host_key):
    """A real SSH login that succeeds only if the server proves ``host_key`` (the file pins it)."""
    argv = ["ssh"]
    for option in SSH_OPTIONS + ("UserKnownHostsFile=" + params["known_hosts"],
                                 "HostKeyAlgorithms=" + HOST_KEY_ALGORITHMS.get(host_key.key_type, host_key.key_type)):
        argv += ["-o", option]
    if params.get("private_key"):
        argv += ["-i", params["private_key"], "-o", "IdentitiesOnly=yes"]
    argv += shlex.split(params.get("ssh_args") or "")
    return argv + ["-p", str(params["port"]), "-l", params["ssh_user"], address, "true"]


def wait_for_ssh(params, address, host_key, deadline, runner, clock):
    argv = ssh_argv(params, address, host_key)
    while True:
        answer = runner.run(argv, timeout=30)
        if answer.rc == 0:
            return
        if clock.now() >= deadline:
            raise ReinstallError("%s did not answer on %s within %d s after the reinstall (last: %s)"
                                 % (params["name"], address, params["timeout_s"], answer.why()),
                                 host_key=host_key.line, fingerprint=host_key.fingerprint)
        clock.sleep(POLL_S)


def make_driver(params, runner, clock):
    return DRIVERS[params["driver"]](params, runner, clock)


def reinstall(params, runner=None, clock=None, check_mode=False):
    """Everything server_reinstall does; the module's result, or ReinstallError."""
    runner, clock = runner or Runner(), clock or Clock()
    if params["timeout_s"] <= 0 or params["command_timeout_s"] <= 0:
        raise ReinstallRefused("timeout_s and command_timeout_s must be positive; nothing was changed.")
    driver = make_driver(params, runner, clock)
    address = params.get("address") or params.get("ipv4")
    if not address:
        raise ReinstallRefused("Give address (where SSH reaches %s); nothing was changed." % params["name"])
    driver.check()
    names = [known_hosts_name(address, params["port"])]
    names += [known_hosts_name(other, params["port"]) for other in (params.get("ipv6"), params.get("hostname"))
              if other and other != address]
    plan = driver.plan() + ["replace the lines of %s in %s with the new key" % (", ".join(names), params["known_hosts"]),
                            "wait up to %d s for SSH on %s to answer with that key" % (params["timeout_s"], address)]
    if check_mode:
        return dict(changed=True, plan=plan, host_key=None, fingerprint=None, elapsed_s=0.0,
                    msg="Would reinstall %s at version %s (%s driver)."
                        % (params["name"], params["version"], driver.name))
    started = clock.now()
    resumed = bool(params.get("resume")) and driver.already_reinstalled()
    if not resumed:
        driver.recreate()
    recreated = clock.now()
    deadline = recreated + params["timeout_s"]
    host_key = driver.host_key(deadline)
    learned = clock.now()
    pin_host_key(params["known_hosts"], names, host_key)
    wait_for_ssh(params, address, host_key, deadline, runner, clock)
    answered = clock.now()
    if resumed:
        return dict(
            changed=True, plan=plan, host_key=host_key.line, fingerprint=host_key.fingerprint, resumed=True,
            elapsed_s=round(answered - started, 3),
            timings=dict(recreate_s=0.0, host_key_s=round(learned - recreated, 3), ssh_s=round(answered - learned, 3)),
            msg="%s was already reinstalled at version %s by an interrupted run (not reinstalled again); it answers "
                "on %s with host key %s." % (params["name"], params["version"], address, host_key.fingerprint))
    return dict(
        changed=True, plan=plan, host_key=host_key.line, fingerprint=host_key.fingerprint, resumed=False,
        elapsed_s=round(answered - started, 3),
        timings=dict(recreate_s=round(recreated - started, 3), host_key_s=round(learned - recreated, 3),
                     ssh_s=round(answered - learned, 3)),
        msg="%s reinstalled at version %s (%s driver) and answers on %s with host key %s after %.1f s."
            % (params["name"], params["version"], driver.name, address, host_key.fingerprint, answered - started))
