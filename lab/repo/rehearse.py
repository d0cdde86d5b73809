"""Rehearse a service update on a throwaway copy of a lab image, without the lab: the image's
files are copied into a directory, and the update's real commands (service_update_runner) run
there with chroot, from the provider repository as served by lab/repo/serve.sh. systemd does not
run in a chroot: systemctl start/stop of the service is done with the server's own tools. A
failure can be injected at a step to rehearse the rollback.

  python lab/repo/rehearse.py --service mariadb|postgresql --repo-url http://127.0.0.1:18080
                              [--fail-at STEP] [--image localhost/hosting-lab:2023] [--keep]

Run as root on the host. Nothing of the lab is touched: the image is only read (podman image
mount); the copy, its mounts and the servers started in it go away at the end.
"""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

TOP = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / ".collections"))

from ansible_collections.hosting.migration.plugins.module_utils import db_checksum  # noqa: E402
from ansible_collections.hosting.migration.plugins.module_utils import service_update as su  # noqa: E402
from ansible_collections.hosting.migration.plugins.module_utils import service_update_backup as sb  # noqa: E402
from ansible_collections.hosting.migration.plugins.module_utils import service_update_runner as sr  # noqa: E402

import yaml  # noqa: E402

VERSIONS = {"mariadb": ("10.11", "11.8"), "postgresql": ("15", "17")}
# A command of each step that --fail-at makes fail (the first time it runs).
FAULTS = {"stop": "systemctl stop", "packages": "apt-get install", "data_upgrade": "upgrade", "start": "ping|status"}
BACKUP_DIR = "/var/backups/hosting/service-update-rehearsal"
SEED = {
    "mariadb": ["CREATE DATABASE shop;", "USE shop;",
                "CREATE TABLE shop.orders (id INT PRIMARY KEY, item VARCHAR(40), price DECIMAL(8,2), note TEXT NULL);",
                "INSERT INTO shop.orders SELECT seq, CONCAT('item ', seq), seq / 7, IF(seq % 3, NULL, 'x') "
                "FROM seq_1_to_5000;",
                "CREATE USER shopuser@localhost IDENTIFIED BY 'secret'; GRANT ALL ON shop.* TO shopuser@localhost;"],
    "postgresql": ["CREATE ROLE shopuser LOGIN PASSWORD 'secret';", "CREATE DATABASE shop OWNER shopuser;"],
}
PG_SEED_SHOP = ("CREATE TABLE orders (id int PRIMARY KEY, item text, price numeric(8,2), note text);"
                "INSERT INTO orders SELECT i, 'item ' || i, i / 7.0, CASE WHEN i % 3 = 0 THEN 'x' END "
                "FROM generate_series(1, 5000) i; ALTER TABLE orders OWNER TO shopuser;")


def say(text):
    print("rehearsal: %s" % text, flush=True)


class ChrootRun(object):
    """run(argv, stdout_path=None, stdin=None) -> (rc, stdout, stderr) inside the copy; systemctl
    for the service becomes the server's own start and stop."""

    def __init__(self, root, service, fail_at=None):
        self.root, self.service, self.fail_at = root, service, fail_at
        self.log = []

    def _chroot(self, argv, stdout_path=None, stdin=None):
        out = open(os.path.join(self.root, stdout_path.lstrip("/")), "wb") if stdout_path else subprocess.PIPE
        try:
            done = subprocess.run(["chroot", self.root] + list(argv), input=stdin.encode() if stdin else None,
                                  stdout=out, stderr=subprocess.PIPE, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                                                           "LANG": "C.UTF-8"})
        finally:
            if stdout_path:
                out.close()
        stdout = "" if stdout_path else done.stdout.decode("utf-8", "replace")
        return done.returncode, stdout, done.stderr.decode("utf-8", "replace")

    def _sh(self, script):
        return self._chroot(["sh", "-c", script])

    def _mariadb(self, action):
        if action in ("stop", "restart"):
            self._sh("[ -S /run/mysqld/mysqld.sock ] && mariadb-admin --silent shutdown; "
                     "for i in $(seq 300); do [ -e /run/mysqld/mysqld.pid ] || exit 0; sleep 0.1; done; exit 1")
            if action == "stop":
                return 0, "", ""
        self._sh("install -d -o mysql -g mysql /run/mysqld")
        subprocess.Popen(["chroot", self.root, "/usr/sbin/mariadbd", "--user=mysql"],
                         stdout=open(os.path.join(self.root, "var/log/mariadbd.log"), "ab"),
                         stderr=subprocess.STDOUT, start_new_session=True)
        return self._sh("for i in $(seq 300); do mariadb-admin --silent ping >/dev/null 2>&1 && exit 0; sleep 0.1; done; "
                        "tail -5 /var/log/mariadbd.log >&2; exit 1")

    def _postgresql(self, action):
        if action in ("stop", "restart"):
            self._sh("pg_lsclusters -h | while read v c p s rest; do [ \"$s\" = online ] && pg_ctlcluster $v $c stop; "
                     "done; true")
            if action == "stop":
                return 0, "", ""
        return self._sh("pg_lsclusters -h | while read v c p s rest; do [ \"$s\" = online ] && continue; "
                        "grep -q '^auto' /etc/postgresql/$v/$c/start.conf || continue; "
                        "pg_ctlcluster $v $c start || exit 1; done")

    def __call__(self, argv, stdout_path=None, stdin=None):
        text = " ".join(argv)
        self.log.append(text)
        if self.fail_at and any(word in text for word in FAULTS[self.fail_at].split("|")):
            self.fail_at = None
            return 1, "", "injected failure (rehearsal)"
        if argv[:1] == ["systemctl"] and len(argv) == 3 and argv[2] == self.service:
            return getattr(self, "_" + self.service)(argv[1])
        return self._chroot(argv, stdout_path, stdin)

    def checked(self, argv, stdin=None):
        """The db_checksum interface: stdout, or an error."""
        rc, stdout, stderr = self._chroot(argv, stdin=stdin)
        if rc != 0:
            raise su.ServiceUpdateError("%s exited with %d: %s" % (" ".join(argv), rc, stderr.strip()[-300:]))
        return stdout


def copy_image(image, target):
    mounted = subprocess.run(["podman", "image", "mount", image], check=True, capture_output=True,
                             text=True).stdout.strip()
    try:
        subprocess.run(["cp", "-a", mounted + "/.", target], check=True)
    finally:
        subprocess.run(["podman", "image", "unmount", image], check=False, capture_output=True)


def prepare(root, repo_url, service):
    for source, target, options in (("proc", "proc", ["-t", "proc"]), ("/dev", "dev", ["--rbind"]),
                                    ("sys", "sys", ["-t", "sysfs"])):
        subprocess.run(["mount"] + options + [source, os.path.join(root, target)], check=True)
    policy = os.path.join(root, "usr/sbin/policy-rc.d")
    with open(policy, "w") as handle:
        handle.write("#!/bin/sh\nexit 101\n")
    os.chmod(policy, 0o755)
    published = pathlib.Path(os.environ.get("HOSTING_LAB_STATE", "/var/lib/hosting-lab")) / "repo/provider"
    os.makedirs(os.path.join(root, "etc/apt/keyrings"), exist_ok=True)
    shutil.copy(published / "hosting-lab-provider.gpg", os.path.join(root, "etc/apt/keyrings/hosting-lab-provider.gpg"))
    with open(os.path.join(root, "etc/apt/sources.list.d/hosting-lab-provider.sources"), "w") as handle:
        handle.write("Types: deb\nURIs: %s\nSuites: provider\nComponents: main previous\n"
                     "Signed-By: /etc/apt/keyrings/hosting-lab-provider.gpg\n" % repo_url)


def seed(run, service):
    if service == "mariadb":
        run.checked(["mariadb"], stdin="\n".join(SEED["mariadb"]))
    else:
        for statement in SEED["postgresql"]:
            run.checked(list(db_checksum.PSQL_ARGV) + ["-d", "postgres"], stdin=statement)
        run.checked(list(db_checksum.PSQL_ARGV) + ["-d", "shop"], stdin=PG_SEED_SHOP)


def contents(run, service):
    return {"shop": db_checksum.table_checksums(run.checked, service, "shop")}


def rehearse(args, root):
    catalogue = yaml.safe_load((TOP / "roles/catalogue/defaults/main.yml").read_text())
    current, target = VERSIONS[args.service]
    plan = su.plan(args.service, current, target, catalogue["service_update_paths"])
    run = ChrootRun(root, args.service)
    prepare(root, args.repo_url, args.service)
    say("starting %s %s in the copy and adding a database" % (args.service, current))
    rc, _out, err = run(["systemctl", "start", args.service])
    if rc:
        raise SystemExit("cannot start %s in the copy: %s" % (args.service, err))
    seed(run, args.service)
    before = contents(run, args.service)
    old_versions = dict(line.split("\t") for line in run.checked(
        ["dpkg-query", "-W", "-f", "${Package}\t${Version}\n"]).splitlines())
    data_dir = "/var/lib/mysql" if args.service == "mariadb" else "/var/lib/postgresql/%s/main" % current
    data_bytes = int(run.checked(["du", "-sb", data_dir]).split()[0])
    facts = {}

    def checks(_run):
        run.checked(["apt-get", "update", "-q"])
        facts["madison"] = run.checked(["apt-cache", "madison"] + plan["packages"])
        facts["new_versions"] = su.check_packages(plan, facts["madison"])
        stat = os.statvfs(root)
        free = stat.f_bavail * stat.f_frsize
        facts["disk"] = su.require_disk(plan, data_bytes, backup_free=free, data_free=free, same_filesystem=True)
        context["new_versions"] = dict((name, chosen["version"]) for name, chosen in facts["new_versions"].items())
        say("checks: %s; packages %s" % (facts["disk"]["message"], json.dumps(context["new_versions"])))

    def backup(_run):
        run.checked(["install", "-d", "-m", "700", BACKUP_DIR])
        files = []
        for name, argv in sb.backup_commands(args.service, ["shop"]):
            rc, _out, err = run(argv, stdout_path="%s/%s" % (BACKUP_DIR, name))
            if rc:
                raise su.ServiceUpdateError("backup %s failed: %s" % (name, err.strip()))
            files.append(name)
        directory = os.path.join(root, BACKUP_DIR.lstrip("/"))
        sb.write_manifest(directory, sb.build_manifest(directory, files, service=args.service, from_version=current))
        sb.require_intact(directory)
        say("backup: %s" % ", ".join("%s %d bytes" % (entry["name"], entry["size"])
                                       for entry in sb.read_manifest(directory)["files"]))

    def verify(_run):
        if args.fail_at == "verify":
            raise su.ServiceUpdateError("injected failure in verify (rehearsal)")
        found = sb.compare_contents(before, contents(run, args.service))
        if found:
            raise su.ServiceUpdateError("contents differ: %s" % "; ".join(sb.describe_differences(found)))

    def verify_old(_run):
        found = sb.compare_contents(before, contents(run, args.service))
        if found:
            raise su.ServiceUpdateError("contents differ after the rollback: %s" % "; ".join(sb.describe_differences(found)))

    context = {"checks": checks, "backup": backup, "verify": verify, "verify_old": verify_old, "backup_dir": BACKUP_DIR,
               "data_dir": data_dir, "kept_data_dir": sr.default_kept_data_dir(data_dir, current), "cluster": "main",
               "old_versions": old_versions}
    if args.fail_at and args.fail_at != "verify":
        run.fail_at = args.fail_at
    result = sr.UpdateRunner(plan, context, run,
                             on_record=lambda record: say("step %s/%s: %s in %.1f s%s" % (
                                 record["phase"], record["name"], record["outcome"], record["elapsed_s"],
                                 " (%s)" % record["error"] if record["error"] else ""))).execute()
    say(result["message"])
    with open(os.path.join(args.output or root, "rehearsal-%s.json" % args.service), "w") as handle:
        json.dump(dict(result, madison=facts.get("madison"), commands=run.log), handle, indent=1, default=str)
    try:
        if args.service == "mariadb":
            version = run.checked(["mariadb", "-N", "-e", "SELECT VERSION()"]).strip()
        else:
            version = run.checked(list(db_checksum.PSQL_ARGV) + ["-d", "shop"], stdin="SHOW server_version;").strip()
        same = not sb.compare_contents(before, contents(run, args.service))
        say("server version now: %s; contents %s" % (version, "equal to before" if same else "DIFFERENT from before"))
    except su.ServiceUpdateError as error:
        version = None
        say("the server does not answer: %s" % error)
    return result, version, run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--service", choices=sorted(VERSIONS), required=True)
    parser.add_argument("--repo-url", required=True)
    parser.add_argument("--fail-at", choices=sorted(FAULTS) + ["verify"])
    parser.add_argument("--image", default="localhost/hosting-lab:2023")
    parser.add_argument("--output", help="directory for rehearsal-SERVICE.json (default: the copy, removed unless --keep)")
    parser.add_argument("--keep", action="store_true", help="keep the copy for a look afterwards")
    args = parser.parse_args()
    if os.environ.get("REHEARSAL_UNSHARED") != "1":
        # Its own mount namespace: every mount of the copy disappears with this process.
        os.environ["REHEARSAL_UNSHARED"] = "1"
        os.execvp("unshare", ["unshare", "--mount", "--propagation", "private", sys.executable] + sys.argv)
    state = pathlib.Path(os.environ.get("HOSTING_LAB_STATE", "/var/lib/hosting-lab"))
    (state / "repo").mkdir(parents=True, exist_ok=True)
    root = tempfile.mkdtemp(prefix="rehearsal-", dir=str(state / "repo"))
    started = time.monotonic()
    run = None
    try:
        say("copying %s into %s" % (args.image, root))
        copy_image(args.image, root)
        result, _version, run = rehearse(args, root)
        say("done in %.0f s" % (time.monotonic() - started))
        return 0 if result["outcome"] in (sr.UPDATED, sr.ROLLED_BACK) else 1
    finally:
        stopper = run or ChrootRun(root, args.service)
        for service in ("mariadb", "postgresql"):
            stopper.service = service
            getattr(stopper, "_" + service)("stop")
        subprocess.run(["umount", "-R", os.path.join(root, "dev")], check=False, capture_output=True)
        for mount in ("proc", "sys"):
            subprocess.run(["umount", os.path.join(root, mount)], check=False, capture_output=True)
        mounted = [name for name in ("dev", "proc", "sys") if os.path.ismount(os.path.join(root, name))]
        if mounted:
            # Never delete through a mount of the host's /dev.
            say("left %s in place: %s still mounted" % (root, ", ".join(mounted)))
        elif not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
