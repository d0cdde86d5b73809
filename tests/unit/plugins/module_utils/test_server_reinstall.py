"""Reinstalling a server: the podman and ssh calls of each driver, the known_hosts file, refusals,
host keys from a script or a fingerprint, and a server that does not come back."""
import base64
import hashlib
import hmac
import os
import stat
import struct

import pytest

from ansible_collections.hosting.migration.plugins.module_utils import server_reinstall as sr
from ansible_collections.hosting.migration.plugins.module_utils.server_reinstall import (
    CommandResult, HostKey, ReinstallError, ReinstallRefused)


def make_key(key_type="ssh-ed25519", seed=b"new"):
    name = key_type.encode()
    blob = struct.pack(">I", len(name)) + name + struct.pack(">I", 32) + hashlib.sha256(seed).digest()
    return HostKey(key_type, base64.b64encode(blob).decode())


NEW_KEY = make_key(seed=b"new")
OLD_KEY = make_key(seed=b"old")
OTHER_KEY = make_key(seed=b"other")
ECDSA_KEY = make_key("ecdsa-sha2-nistp256", seed=b"ecdsa")
PUBLIC_KEY = "ssh-ed25519 " + make_key(seed=b"controller").key_data + " hosting-lab"


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def now(self):
        return self.t

    def sleep(self, seconds):
        self.t += seconds


class FakeRunner:
    """Records every command; ``answer(argv)`` gives what it returns (rc 0 and no output if None)."""

    def __init__(self, clock, answer=None, cost_s=0.1):
        self.clock, self.answer, self.cost_s = clock, answer or (lambda argv: None), cost_s
        self.calls = []

    def run(self, argv, timeout=None):
        self.calls.append((list(argv), timeout))
        self.clock.t += self.cost_s
        result = self.answer(list(argv))
        return result if result is not None else CommandResult(0, "", "")

    def commands(self):
        return [argv for argv, dummy in self.calls]

    def first(self, *prefix):
        return [argv for argv in self.commands() if argv[:len(prefix)] == list(prefix)]


def ok(stdout=""):
    return CommandResult(0, stdout, "")


def failed(stderr, rc=1):
    return CommandResult(rc, "", stderr)


@pytest.fixture
def known_hosts(tmp_path):
    path = tmp_path / "ssh" / "known_hosts"
    path.parent.mkdir()
    path.write_text("10.77.0.40 %s\n10.77.0.20 %s\n10.77.0.10 %s\n" % (OTHER_KEY.line, OLD_KEY.line, OTHER_KEY.line))
    path.chmod(0o600)
    return path


def lab_params(known_hosts, **more):
    params = dict(
        name="dedicated1", version="2025", driver="lab", address="10.77.0.20", port=22,
        known_hosts=str(known_hosts), private_key="/var/lib/hosting-lab/ssh/id_ed25519",
        ssh_args="-o UserKnownHostsFile=/elsewhere -o StrictHostKeyChecking=no -o ControlPath=/tmp/cm-%C",
        ssh_user="root", timeout_s=300, image=None, image_prefix="localhost/hosting-lab", network="hostinglab",
        ipv4="10.77.0.20", ipv6="fd77:7::20", mac="02:77:00:00:00:20", hostname=None,
        labels={"hosting.lab": "server"}, capabilities=["NET_ADMIN", "NET_RAW"], stop_timeout_s=10,
        authorized_key=PUBLIC_KEY, command=None, command_timeout_s=3600, host_key_fingerprint=None)
    params.update(more)
    return params


def lab_answer(host_key_after=2, ssh_after=1, image=True):
    """A lab where the image exists, the host key appears on the nth read and SSH answers on the nth try."""
    seen = {"cat": 0, "ssh": 0}

    def answer(argv):
        if argv[:3] == ["podman", "image", "exists"]:
            return ok() if image else failed("", rc=1)
        if argv[:2] == ["podman", "exec"] and argv[3:4] == ["cat"]:
            seen["cat"] += 1
            if seen["cat"] < host_key_after:
                return failed("cat: /etc/ssh/ssh_host_ed25519_key.pub: No such file or directory")
            return ok(NEW_KEY.line + " root@dedicated1\n")
        if argv[0] == "ssh":
            seen["ssh"] += 1
            return ok() if seen["ssh"] >= ssh_after else failed("ssh: connect to host 10.77.0.20 port 22: "
                                                                 "Connection refused", rc=255)
        return None
    return answer


# --- known_hosts -------------------------------------------------------------------------------

def test_the_servers_line_is_replaced_in_place_and_the_others_kept():
    text = ("# the lab\n10.77.0.40 %s\n10.77.0.20 %s\n@cert-authority *.test %s\n10.77.0.10 %s"
            % (OTHER_KEY.line, OLD_KEY.line, OTHER_KEY.line, OTHER_KEY.line))
    after, removed = sr.replace_known_host(text, ["10.77.0.20"], NEW_KEY)
    assert removed == 1
    assert after == ("# the lab\n10.77.0.40 %s\n10.77.0.20 %s\n@cert-authority *.test %s\n10.77.0.10 %s\n"
                     % (OTHER_KEY.line, NEW_KEY.line, OTHER_KEY.line, OTHER_KEY.line))


def test_every_entry_of_the_server_goes_and_shared_lines_keep_other_hosts():
    salt = b"0123456789abcdefghij"
    hashed = "|1|%s|%s" % (base64.b64encode(salt).decode(),
                           base64.b64encode(hmac.new(salt, b"fd77:7::20", hashlib.sha1).digest()).decode())
    text = ("10.77.0.20,dedicated1.lab %s\n%s %s\n10.77.0.20 %s\n10.77.0.200 %s\n"
            % (OLD_KEY.line, hashed, OLD_KEY.line, OTHER_KEY.line, OTHER_KEY.line))
    after, removed = sr.replace_known_host(text, ["10.77.0.20", "fd77:7::20", "dedicated1"], NEW_KEY)
    assert removed == 3
    assert after.splitlines() == [
        "10.77.0.20 " + NEW_KEY.line,
        "fd77:7::20 " + NEW_KEY.line,
        "dedicated1.lab " + OLD_KEY.line,
        "10.77.0.200 " + OTHER_KEY.line,
    ]


def test_a_server_without_a_line_gets_one_and_ports_are_bracketed():
    after, removed = sr.replace_known_host("", [sr.known_hosts_name("10.77.0.20", 2222)], NEW_KEY)
    assert (after, removed) == ("[10.77.0.20]:2222 %s\n" % NEW_KEY.line, 0)


def test_pinning_keeps_the_mode_and_a_second_time_changes_nothing(known_hosts):
    assert sr.pin_host_key(str(known_hosts), ["10.77.0.20"], NEW_KEY) is True
    assert stat.S_IMODE(os.stat(known_hosts).st_mode) == 0o600
    assert known_hosts.read_text().splitlines() == [
        "10.77.0.40 " + OTHER_KEY.line, "10.77.0.20 " + NEW_KEY.line, "10.77.0.10 " + OTHER_KEY.line]
    assert sr.pin_host_key(str(known_hosts), ["10.77.0.20"], NEW_KEY) is False
    assert sorted(os.listdir(known_hosts.parent)) == ["known_hosts"]


def test_fingerprint_is_openssh_s():
    key = sr.parse_host_key("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKyDQRys6v27+1E1fjA0kYpcoDONo7EVH6h/RcZ95KK3 root@x", "k")
    assert key.fingerprint == "SHA256:oI4nF2DC0fBYyjSrSuD9qNdn69KVXRbs8zCSRyilneU"


@pytest.mark.parametrize("text", ["", "ssh-ed25519", "ssh-dss AAAAB3NzaC1kc3M=", "ssh-ed25519 not-base64!",
                                  "ssh-ed25519 " + ECDSA_KEY.key_data])
def test_what_is_not_a_host_key_is_refused(text):
    with pytest.raises(ReinstallError):
        sr.parse_host_key(text, "the key")


# --- lab driver --------------------------------------------------------------------------------

def test_lab_recreates_the_container_reads_its_key_and_logs_in_with_it(known_hosts):
    clock = FakeClock()
    runner = FakeRunner(clock, lab_answer(host_key_after=3, ssh_after=2))
    result = sr.reinstall(lab_params(known_hosts), runner, clock)

    commands = runner.commands()
    assert commands[0] == ["podman", "image", "exists", "localhost/hosting-lab:2025"]
    assert commands[1] == ["podman", "rm", "--force", "--ignore", "--time=10", "dedicated1"]
    assert commands[2] == [
        "podman", "run", "--detach", "--name=dedicated1", "--hostname=dedicated1", "--systemd=always",
        "--pull=never", "--cap-add=NET_ADMIN,NET_RAW", "--label=hosting.lab=server",
        "--network=hostinglab:ip=10.77.0.20,ip=fd77:7::20,mac=02:77:00:00:00:20",
        "localhost/hosting-lab:2025", "/sbin/init"]
    assert commands[3][0] == "sysctl" and "net.ipv4.ip_forward=0" in commands[3]
    assert runner.first("podman", "exec", "dedicated1", "cat") == [
        ["podman", "exec", "dedicated1", "cat", "/etc/ssh/ssh_host_ed25519_key.pub"]] * 3
    authorise = runner.first("podman", "exec", "dedicated1", "sh")
    assert len(authorise) == 1 and authorise[0][-1] == PUBLIC_KEY

    ssh = runner.first("ssh")
    assert len(ssh) == 2
    argv = ssh[0]
    # The pinned file and strict checking come first, so the user's ssh_args cannot loosen them.
    assert argv.index("UserKnownHostsFile=%s" % known_hosts) < argv.index("UserKnownHostsFile=/elsewhere")
    assert argv.index("StrictHostKeyChecking=yes") < argv.index("StrictHostKeyChecking=no")
    assert argv.index("ControlPath=none") < argv.index("ControlPath=/tmp/cm-%C")
    assert "HostKeyAlgorithms=ssh-ed25519" in argv
    assert argv[-6:] == ["-p", "22", "-l", "root", "10.77.0.20", "true"]

    # Nothing ran before the image was known to exist; the key was pinned before SSH was tried.
    assert known_hosts.read_text().splitlines() == [
        "10.77.0.40 " + OTHER_KEY.line, "10.77.0.20 " + NEW_KEY.line, "10.77.0.10 " + OTHER_KEY.line]
    assert result["changed"] is True
    assert result["host_key"] == NEW_KEY.line
    assert result["fingerprint"] == NEW_KEY.fingerprint
    assert result["elapsed_s"] == pytest.approx(clock.t - 1000.0 - 0.1, abs=0.01)
    assert set(result["timings"]) == {"recreate_s", "host_key_s", "ssh_s"}


def test_lab_refuses_without_the_image_and_removes_nothing(known_hosts):
    clock = FakeClock()
    runner = FakeRunner(clock, lab_answer(image=False))
    before = known_hosts.read_text()
    with pytest.raises(ReinstallRefused) as refused:
        sr.reinstall(lab_params(known_hosts, version="2027"), runner, clock)
    assert "localhost/hosting-lab:2027 is not in podman" in str(refused.value)
    assert "dedicated1 was left as it is" in str(refused.value)
    assert runner.commands() == [["podman", "image", "exists", "localhost/hosting-lab:2027"]]
    assert known_hosts.read_text() == before


@pytest.mark.parametrize("change, words", [
    (dict(mac=None), "needs mac"),
    (dict(authorized_key=None, private_key="/nonexistent/key"), "needs authorized_key"),
    (dict(name="--rm"), "not a valid container name"),
    (dict(image="--privileged"), "not an image name"),
])
def test_lab_refuses_bad_options_before_any_command(known_hosts, change, words):
    clock = FakeClock()
    runner = FakeRunner(clock, lab_answer())
    with pytest.raises(ReinstallRefused) as refused:
        sr.reinstall(lab_params(known_hosts, **change), runner, clock)
    assert words in str(refused.value)
    assert runner.commands() == []


def test_lab_takes_the_public_key_next_to_the_private_key(known_hosts, tmp_path):
    (tmp_path / "id_ed25519.pub").write_text(PUBLIC_KEY + "\n")
    clock = FakeClock()
    runner = FakeRunner(clock, lab_answer())
    sr.reinstall(lab_params(known_hosts, authorized_key=None, private_key=str(tmp_path / "id_ed25519")), runner, clock)
    assert runner.first("podman", "exec", "dedicated1", "sh")[0][-1] == PUBLIC_KEY


def test_check_mode_says_what_it_would_do_and_changes_nothing(known_hosts):
    clock = FakeClock()
    runner = FakeRunner(clock, lab_answer())
    before = known_hosts.read_text()
    result = sr.reinstall(lab_params(known_hosts), runner, clock, check_mode=True)
    assert runner.commands() == [["podman", "image", "exists", "localhost/hosting-lab:2025"]]
    assert result["changed"] is True and result["host_key"] is None
    assert any("podman rm" in step for step in result["plan"])
    assert known_hosts.read_text() == before


def test_a_failed_podman_run_says_the_old_system_is_gone(known_hosts):
    clock = FakeClock()

    def answer(argv):
        if argv[:2] == ["podman", "run"]:
            return failed("Error: IPAM error: requested ip address 10.77.0.20 is already allocated")
        return lab_answer()(argv)
    with pytest.raises(ReinstallError) as error:
        sr.reinstall(lab_params(known_hosts), FakeRunner(clock, answer), clock)
    assert "already allocated" in str(error.value) and "the old system is gone" in str(error.value)


def test_lab_fails_when_the_first_boot_makes_no_host_key(known_hosts):
    clock = FakeClock()
    runner = FakeRunner(clock, lab_answer(host_key_after=10 ** 6))
    with pytest.raises(ReinstallError) as error:
        sr.reinstall(lab_params(known_hosts, timeout_s=20), runner, clock)
    assert "dedicated1 made no SSH host key" in str(error.value)
    assert runner.first("ssh") == []


def test_a_server_that_does_not_come_back_fails_clearly(known_hosts):
    clock = FakeClock()
    runner = FakeRunner(clock, lab_answer(ssh_after=10 ** 6))
    with pytest.raises(ReinstallError) as error:
        sr.reinstall(lab_params(known_hosts), runner, clock)
    assert str(error.value).startswith("dedicated1 did not answer on 10.77.0.20 within 300 s after the reinstall")
    assert "Connection refused" in str(error.value)
    assert error.value.details["fingerprint"] == NEW_KEY.fingerprint
    # It kept trying for the whole time, no longer.
    assert 300 <= clock.t - 1000.0 < 303


# --- command driver ------------------------------------------------------------------------------

@pytest.fixture
def script(tmp_path):
    path = tmp_path / "provider-reinstall"
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return str(path)


def command_params(known_hosts, script, **more):
    params = dict(driver="command", command=script, network=None, ipv4=None, ipv6=None, mac=None,
                  authorized_key=None, private_key=None, ssh_args="")
    params.update(more)
    return lab_params(known_hosts, **params)


def command_answer(script, stdout="", scanned=(), ssh_ok=True):
    def answer(argv):
        if argv[0] == script:
            return ok(stdout)
        if argv[0] == "ssh-keyscan":
            return ok("".join("10.77.0.20 %s\n" % key.line for key in scanned))
        if argv[0] == "ssh":
            return ok() if ssh_ok else failed("Host key verification failed.", rc=255)
        return None
    return answer


def test_command_driver_takes_the_key_the_script_prints(known_hosts, script):
    clock = FakeClock()
    runner = FakeRunner(clock, command_answer(script, "reinstalling...\nhost-key: %s root@new\ndone\n" % NEW_KEY.line))
    result = sr.reinstall(command_params(known_hosts, script, command_timeout_s=1800), runner, clock)
    assert runner.calls[0] == ([script, "dedicated1", "2025"], 1800)
    assert runner.first("ssh-keyscan") == []
    assert len(runner.first("ssh")) == 1
    assert result["host_key"] == NEW_KEY.line
    assert "10.77.0.20 " + NEW_KEY.line in known_hosts.read_text().splitlines()


def test_command_driver_accepts_a_scanned_key_only_with_the_given_fingerprint(known_hosts, script):
    clock = FakeClock()
    runner = FakeRunner(clock, command_answer(script, scanned=(ECDSA_KEY, NEW_KEY)))
    result = sr.reinstall(command_params(known_hosts, script, host_key_fingerprint=NEW_KEY.fingerprint), runner, clock)
    assert runner.first("ssh-keyscan")[0][-1] == "10.77.0.20"
    assert result["fingerprint"] == NEW_KEY.fingerprint
    assert "10.77.0.20 " + NEW_KEY.line in known_hosts.read_text().splitlines()


def test_command_driver_refuses_a_scanned_key_with_another_fingerprint(known_hosts, script):
    clock = FakeClock()
    runner = FakeRunner(clock, command_answer(script, scanned=(OTHER_KEY,)))
    before = known_hosts.read_text()
    with pytest.raises(ReinstallError) as error:
        sr.reinstall(command_params(known_hosts, script, host_key_fingerprint=NEW_KEY.fingerprint), runner, clock)
    assert OTHER_KEY.fingerprint in str(error.value) and NEW_KEY.fingerprint in str(error.value)
    assert "nothing was trusted" in str(error.value)
    assert known_hosts.read_text() == before
    assert runner.first("ssh") == []


def test_command_driver_refuses_a_printed_key_with_another_fingerprint(known_hosts, script):
    clock = FakeClock()
    runner = FakeRunner(clock, command_answer(script, "host-key: %s\n" % OTHER_KEY.line))
    with pytest.raises(ReinstallError) as error:
        sr.reinstall(command_params(known_hosts, script, host_key_fingerprint=NEW_KEY.fingerprint), runner, clock)
    assert "not %s" % NEW_KEY.fingerprint in str(error.value)
    assert runner.first("ssh") == [] and runner.first("ssh-keyscan") == []


def test_command_driver_without_key_or_fingerprint_trusts_nothing(known_hosts, script):
    clock = FakeClock()
    runner = FakeRunner(clock, command_answer(script, "done\n", scanned=(NEW_KEY,)))
    before = known_hosts.read_text()
    with pytest.raises(ReinstallError) as error:
        sr.reinstall(command_params(known_hosts, script), runner, clock)
    assert "cannot be trusted" in str(error.value)
    assert runner.first("ssh-keyscan") == [] and runner.first("ssh") == []
    assert known_hosts.read_text() == before


def test_command_driver_waits_for_the_server_to_answer_the_scan(known_hosts, script):
    clock = FakeClock()
    scans = []

    def answer(argv):
        if argv[0] == "ssh-keyscan":
            scans.append(argv)
            return ok("10.77.0.20 %s\n" % NEW_KEY.line) if len(scans) >= 4 else ok("")
        return command_answer(script)(argv)
    sr.reinstall(command_params(known_hosts, script, host_key_fingerprint=NEW_KEY.fingerprint),
                 FakeRunner(clock, answer), clock)
    assert len(scans) == 4


def test_command_driver_gives_up_on_a_silent_server(known_hosts, script):
    clock = FakeClock()
    runner = FakeRunner(clock, command_answer(script, scanned=()))
    with pytest.raises(ReinstallError) as error:
        sr.reinstall(command_params(known_hosts, script, host_key_fingerprint=NEW_KEY.fingerprint, timeout_s=60),
                     runner, clock)
    assert "dedicated1 did not answer on 10.77.0.20 within 60 s after the reinstall" in str(error.value)


def test_a_script_that_fails_or_hangs_is_reported(known_hosts, script):
    clock = FakeClock()
    runner = FakeRunner(clock, lambda argv: failed("API error: server locked", rc=3))
    with pytest.raises(ReinstallError) as error:
        sr.reinstall(command_params(known_hosts, script), runner, clock)
    assert "failed for dedicated1 (exit 3): API error: server locked" in str(error.value)
    runner = FakeRunner(clock, lambda argv: CommandResult(None, "", "", timed_out=True))
    with pytest.raises(ReinstallError) as error:
        sr.reinstall(command_params(known_hosts, script, command_timeout_s=5), runner, clock)
    assert "did not finish within 5 s" in str(error.value)


@pytest.mark.parametrize("change, words", [
    (dict(host_key_fingerprint="MD5:aa:bb"), "not an OpenSSH SHA256 fingerprint"),
    (dict(command="/nonexistent/reinstall"), "not an executable file"),
    (dict(address=None), "Give address"),
])
def test_command_driver_refuses_bad_options_before_running_anything(known_hosts, script, change, words):
    clock = FakeClock()
    runner = FakeRunner(clock, command_answer(script))
    with pytest.raises(ReinstallRefused) as refused:
        sr.reinstall(command_params(known_hosts, script, **change), runner, clock)
    assert words in str(refused.value)
    assert runner.commands() == []


def test_the_real_runner_stops_a_script_that_outlives_its_timeout(tmp_path):
    result = sr.Runner().run(["sh", "-c", "sleep 30 & sleep 30"], timeout=0.5)
    assert result.timed_out and result.rc is None


# --- resuming an interrupted reinstall ----------------------------------------------------------

def with_container(answer, image_name, running="true"):
    def wrapped(argv):
        if argv[:3] == ["podman", "container", "inspect"]:
            return ok("%s %s\n" % (image_name, running)) if image_name else failed("no such container", rc=125)
        return answer(argv)
    return wrapped


def test_resume_does_not_reinstall_a_container_already_running_the_target_image(known_hosts):
    clock = FakeClock()
    runner = FakeRunner(clock, with_container(lab_answer(), "localhost/hosting-lab:2025"))
    result = sr.reinstall(lab_params(known_hosts, resume=True), runner, clock)
    assert runner.first("podman", "rm") == [] and runner.first("podman", "run") == []
    assert result["resumed"] is True and "not reinstalled again" in result["msg"]
    assert "10.77.0.20 " + NEW_KEY.line in known_hosts.read_text().splitlines()
    assert len(runner.first("ssh")) == 1


@pytest.mark.parametrize("image_name, running", [
    ("localhost/hosting-lab:2023", "true"),   # killed before the recreate: the old system still runs
    ("localhost/hosting-lab:2025", "false"),  # made but not running: made again
    (None, ""),                               # removed, never run again
])
def test_resume_reinstalls_when_the_new_system_is_not_there(known_hosts, image_name, running):
    clock = FakeClock()
    runner = FakeRunner(clock, with_container(lab_answer(), image_name, running))
    result = sr.reinstall(lab_params(known_hosts, resume=True), runner, clock)
    assert len(runner.first("podman", "rm")) == 1 and len(runner.first("podman", "run")) == 1
    assert result["resumed"] is False


def test_without_resume_the_container_is_not_even_looked_at(known_hosts):
    clock = FakeClock()
    runner = FakeRunner(clock, with_container(lab_answer(), "localhost/hosting-lab:2025"))
    result = sr.reinstall(lab_params(known_hosts), runner, clock)
    assert runner.first("podman", "container", "inspect") == []
    assert len(runner.first("podman", "run")) == 1 and result["resumed"] is False


def test_command_driver_resumes_only_on_the_fingerprint_the_operator_gave(known_hosts, script):
    clock = FakeClock()
    runner = FakeRunner(clock, command_answer(script, scanned=(NEW_KEY,)))
    result = sr.reinstall(command_params(known_hosts, script, resume=True, host_key_fingerprint=NEW_KEY.fingerprint),
                          runner, clock)
    assert runner.first(script) == [] and result["resumed"] is True
    # The old system still answers with its old key: the script runs.
    clock = FakeClock()
    runner = FakeRunner(clock, command_answer(script, "host-key: %s\n" % NEW_KEY.line, scanned=(OLD_KEY,)))
    result = sr.reinstall(command_params(known_hosts, script, resume=True, host_key_fingerprint=NEW_KEY.fingerprint),
                          runner, clock)
    assert len(runner.first(script)) == 1 and result["resumed"] is False


def test_command_driver_without_fingerprint_runs_the_script_again_on_resume(known_hosts, script):
    clock = FakeClock()
    runner = FakeRunner(clock, command_answer(script, "host-key: %s\n" % NEW_KEY.line, scanned=(NEW_KEY,)))
    result = sr.reinstall(command_params(known_hosts, script, resume=True), runner, clock)
    assert len(runner.first(script)) == 1 and runner.first("ssh-keyscan") == [] and result["resumed"] is False


def test_command_driver_does_not_take_the_old_pinned_key_as_proof_of_a_reinstall(known_hosts, script):
    # known_hosts pins OLD_KEY for 10.77.0.20; an operator giving that fingerprint proves nothing.
    clock = FakeClock()
    runner = FakeRunner(clock, command_answer(script, "", scanned=(OLD_KEY,)))
    result = sr.reinstall(command_params(known_hosts, script, resume=True, host_key_fingerprint=OLD_KEY.fingerprint),
                          runner, clock)
    assert len(runner.first(script)) == 1 and result["resumed"] is False
