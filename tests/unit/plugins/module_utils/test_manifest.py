# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The manifest of a home: entries, digest, comparison, excludes, files; and the module's
per-account snapshot built on it."""

from __future__ import (absolute_import, division, print_function)

__metaclass__ = type

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import stat
import subprocess

import pytest

from ansible_collections.hosting.migration.plugins.module_utils import manifest as mf
from ansible_collections.hosting.migration.plugins.module_utils.account_spec import validate_spec
from ansible_collections.hosting.migration.plugins.modules import account_snapshot_info

ROOT = os.geteuid() == 0
OTHER_UID = 12345
NS = 1000000000
ODD_NAME = b"caf\xe9-latin1.txt"  # not UTF-8: kept byte for byte


@contextlib.contextmanager
def mtime_kept(*paths):
    """Change something inside directories without changing their own mtimes."""
    saved = [(path, os.lstat(path).st_mtime_ns) for path in paths]
    yield
    for path, mtime in saved:
        os.utime(path, ns=(mtime, mtime), follow_symlinks=False)


def set_mtime(path, seconds):
    os.utime(path, ns=(seconds * NS + 123456789, seconds * NS + 123456789), follow_symlinks=False)


@pytest.fixture
def home(tmp_path):
    """A home with every kind of entry, and fixed times on all of them."""
    root = tmp_path / "home"
    (root / "www" / "img").mkdir(parents=True)
    (root / "www" / "index.php").write_bytes(b"<?php echo 1;\n")
    (root / "www" / "img" / "logo.png").write_bytes(bytes(range(256)) * 10)
    (root / "data").mkdir()
    (root / "data" / "notes.txt").write_bytes(b"notes\n")
    os.link(root / "data" / "notes.txt", root / "data" / "notes-hardlink.txt")
    (root / "data" / "latest").symlink_to("notes.txt")
    (root / "data" / "empty").write_bytes(b"")
    os.mkfifo(root / "data" / "pipe")
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_bytes(b"#!/bin/sh\n")
    os.chmod(root / "bin" / "tool", 0o4755)
    (root / "shared").mkdir()
    os.chmod(root / "shared", 0o1777)
    (root / "cache").mkdir()
    (root / "cache" / "x.tmp").write_bytes(b"tmp")
    (root / "app.log").write_bytes(b"log")
    with open(os.path.join(os.fsencode(str(root)), ODD_NAME), "wb") as handle:
        handle.write(b"odd")
    fixed = 1700000000
    for directory, subdirs, names in os.walk(str(root), topdown=False):
        for name in names + subdirs:
            set_mtime(os.path.join(directory, name), fixed)
            fixed += 1
    set_mtime(str(root), fixed)
    return str(root)


def diff_fields(a, b):
    return [(change["path"], change["field"]) for change in mf.compare_manifests(a, b)]


# --- entries -----------------------------------------------------------------------------------

def test_every_kind_of_entry_is_described(home):
    manifest = mf.build_manifest(home)
    entries = manifest.by_path

    assert [entry.path for entry in manifest][0] == "."
    assert [entry.path for entry in manifest][1:] == sorted(
        (entry.path for entry in manifest if entry.path != "."), key=lambda path: path.encode("utf-8", "surrogateescape"))
    assert entries["."].type == "dir"
    assert entries["www/index.php"].type == "file"
    assert entries["www/index.php"].size == 14
    assert entries["www/index.php"].sha256 == hashlib.sha256(b"<?php echo 1;\n").hexdigest()
    assert entries["data/latest"].type == "symlink"
    assert entries["data/latest"].target == "notes.txt"
    assert entries["data/latest"].mode is None
    assert entries["data/latest"].mtime_ns == os.lstat(os.path.join(home, "data", "latest")).st_mtime_ns
    assert entries["data/pipe"].type == "fifo"
    assert entries["data/pipe"].sha256 is None
    assert entries["bin/tool"].mode == 0o4755
    assert entries["shared"].mode == 0o1777
    assert entries["shared"].mtime_ns == os.stat(os.path.join(home, "shared")).st_mtime_ns
    assert entries["data/empty"].sha256 == hashlib.sha256(b"").hexdigest()
    assert entries["caf\udce9-latin1.txt"].size == 3


def test_hard_links_share_the_group_of_their_first_path(home):
    entries = mf.build_manifest(home).by_path

    assert entries["data/notes-hardlink.txt"].link == "data/notes-hardlink.txt"
    assert entries["data/notes.txt"].link == "data/notes-hardlink.txt"
    assert entries["www/index.php"].link is None


def test_counts_count_hard_linked_bytes_once(home):
    counts = mf.build_manifest(home).counts

    assert counts == {"entries": 18, "files": 9, "dirs": 7, "links": 1, "special": 1, "hardlinked": 2,
                      "bytes": 14 + 2560 + 6 + 0 + 10 + 3 + 3 + 3}


def test_a_hard_linked_file_is_read_once(home, monkeypatch):
    read = []
    real = mf.file_sha256
    monkeypatch.setattr(mf, "file_sha256", lambda path: read.append(path) or real(path))

    mf.build_manifest(home)

    assert len(read) == 8  # nine regular files, two of them one inode


def test_links_to_files_outside_the_tree_are_no_group(home, tmp_path):
    os.link(os.path.join(home, "www", "index.php"), str(tmp_path / "outside.php"))

    assert mf.build_manifest(home)["www/index.php"].link is None


def test_a_device_is_described_by_its_numbers(tmp_path):
    if not ROOT:
        pytest.skip("creating a device node needs root")
    os.mknod(str(tmp_path / "null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))

    entry = mf.build_manifest(str(tmp_path))["null"]

    assert (entry.type, entry.device, entry.sha256) == ("char", "1,3", None)


def test_the_root_must_be_a_directory(tmp_path):
    (tmp_path / "file").write_bytes(b"x")
    (tmp_path / "link").symlink_to(str(tmp_path))

    for path in (tmp_path / "file", tmp_path / "link", tmp_path / "missing"):
        with pytest.raises(mf.ManifestError):
            mf.build_manifest(str(path))


# --- the digest --------------------------------------------------------------------------------

def test_digest_is_stable_across_rebuilds(home):
    assert mf.build_manifest(home).digest == mf.build_manifest(home).digest
    assert mf.manifest_digest(mf.build_manifest(home)) == mf.build_manifest(home).digest


def test_digest_does_not_depend_on_where_the_tree_is(home, tmp_path):
    copy = str(tmp_path / "elsewhere")
    os.mkdir(copy)
    subprocess.run(["cp", "-a", home + "/.", copy], check=True)

    assert diff_fields(mf.build_manifest(home), mf.build_manifest(copy)) == []
    assert mf.build_manifest(home).digest == mf.build_manifest(copy).digest


def change_content(home):
    path = os.path.join(home, "www", "index.php")
    info = os.stat(path)
    with mtime_kept(path):
        with open(path, "r+b") as handle:
            handle.write(b"<?php echo 2;\n")  # same size
    assert os.stat(path).st_size == info.st_size
    return "www/index.php", "sha256"


def change_mode(home):
    os.chmod(os.path.join(home, "bin", "tool"), 0o755)  # setuid bit gone
    return "bin/tool", "mode"


def change_sticky(home):
    os.chmod(os.path.join(home, "shared"), 0o777)
    return "shared", "mode"


def change_file_mtime(home):
    path = os.path.join(home, "www", "index.php")
    mtime = os.stat(path).st_mtime_ns + 1
    os.utime(path, ns=(mtime, mtime))
    return "www/index.php", "mtime_ns"


def change_dir_mtime(home):
    path = os.path.join(home, "www", "img")
    mtime = os.stat(path).st_mtime_ns - NS
    os.utime(path, ns=(mtime, mtime))
    return "www/img", "mtime_ns"


def change_owner(home):
    if not ROOT:
        pytest.skip("changing a file's owner needs root")
    os.chown(os.path.join(home, "app.log"), OTHER_UID, -1)
    return "app.log", "uid"


def change_group(home):
    if not ROOT:
        pytest.skip("changing a file's group needs root")
    path = os.path.join(home, "data", "latest")
    os.chown(path, -1, OTHER_UID, follow_symlinks=False)
    return "data/latest", "gid"


def change_symlink_target(home):
    path = os.path.join(home, "data", "latest")
    with mtime_kept(os.path.join(home, "data")):
        mtime = os.lstat(path).st_mtime_ns
        os.unlink(path)
        os.symlink("empty", path)
        os.utime(path, ns=(mtime, mtime), follow_symlinks=False)
    return "data/latest", "target"


def break_hard_link(home):
    # The same content, mode and time in a new inode: only the hard link is gone.
    path = os.path.join(home, "data", "notes.txt")
    with mtime_kept(os.path.join(home, "data")):
        shutil.copy2(path, path + ".new")
        os.rename(path + ".new", path)
    return "data/notes-hardlink.txt", "link"


@pytest.mark.parametrize("change", [
    change_content, change_mode, change_sticky, change_file_mtime, change_dir_mtime, change_owner,
    change_group, change_symlink_target, break_hard_link,
])
def test_each_kind_of_change_changes_the_digest_and_is_named(home, change):
    before = mf.build_manifest(home)

    path, field = change(home)
    after = mf.build_manifest(home)

    assert after.digest != before.digest
    expected = [(path, field)]
    if change is break_hard_link:
        # Both paths lose their group: the first had it from itself, the second from the first.
        expected = [("data/notes-hardlink.txt", "link"), ("data/notes.txt", "link")]
    assert diff_fields(before, after) == expected


def test_differences_carry_both_values_and_modes_in_octal(home):
    before = mf.build_manifest(home)
    change_mode(home)

    assert list(mf.compare_manifests(before, mf.build_manifest(home))) == [
        {"path": "bin/tool", "field": "mode", "source": "4755", "target": "0755"}]


def test_without_content_hashing_sizes_and_times_still_count(home):
    before = mf.build_manifest(home, hash_content=False)
    assert all(entry.sha256 is None for entry in before)

    change_content(home)  # same size, same time: invisible without hashing
    assert mf.build_manifest(home, hash_content=False).digest == before.digest

    change_file_mtime(home)
    assert diff_fields(before, mf.build_manifest(home, hash_content=False)) == [("www/index.php", "mtime_ns")]


def test_content_is_not_compared_when_one_side_did_not_hash_it(home):
    hashed = mf.build_manifest(home)
    plain = mf.build_manifest(home, hash_content=False)

    assert diff_fields(hashed, plain) == []
    assert hashed.digest != plain.digest


# --- comparing ---------------------------------------------------------------------------------

def test_missing_and_extra_paths_are_presence_differences(home):
    before = mf.build_manifest(home)
    with mtime_kept(os.path.join(home, "www"), os.path.join(home, "data")):
        os.unlink(os.path.join(home, "www", "index.php"))
        os.mkdir(os.path.join(home, "data", "new"))

    assert list(mf.compare_manifests(before, mf.build_manifest(home))) == [
        {"path": "data/new", "field": "presence", "source": None, "target": "dir"},
        {"path": "www/index.php", "field": "presence", "source": "file", "target": None},
    ]


def test_a_changed_type_is_reported_alone(home):
    before = mf.build_manifest(home)
    path = os.path.join(home, "app.log")
    with mtime_kept(home):
        os.unlink(path)
        os.mkdir(path)

    assert list(mf.compare_manifests(before, mf.build_manifest(home))) == [
        {"path": "app.log", "field": "type", "source": "file", "target": "dir"}]


def test_the_limit_keeps_the_first_differences_and_counts_all(home):
    before = mf.build_manifest(home)
    for name in ("a", "b", "c"):
        with open(os.path.join(home, "www", name), "w") as handle:
            handle.write(name)

    found = mf.compare_manifests(before, mf.build_manifest(home), limit=2)

    assert [change["path"] for change in found] == ["www", "www/a"]
    assert found.total == 4 and found.truncated
    assert len(mf.compare_manifests(before, mf.build_manifest(home), limit=None)) == 4


# --- excludes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("patterns, gone", [
    (["*.log"], {"app.log"}),
    (["cache"], {"cache", "cache/x.tmp"}),
    (["cache/"], {"cache", "cache/x.tmp"}),
    (["app.log/"], set()),  # directories only
    (["/www/img"], {"www/img", "www/img/logo.png"}),
    (["www/*"], {"www/img", "www/img/logo.png", "www/index.php"}),
    (["*/*.txt"], {"data/notes.txt", "data/notes-hardlink.txt"}),
    (["**.png"], {"www/img/logo.png"}),
    (["data/notes-hard?ink.txt"], {"data/notes-hardlink.txt"}),
    (["[ab]*"], {"app.log", "bin", "bin/tool"}),
    (["[!a-z]*"], set()),
    (["./data/pipe", "shared"], {"data/pipe", "shared"}),
])
def test_excludes(home, patterns, gone):
    everything = {entry.path for entry in mf.build_manifest(home)}
    kept = {entry.path for entry in mf.build_manifest(home, excludes=patterns)}

    assert everything - kept == gone


def test_excluding_one_hard_link_leaves_the_other_without_group(home):
    manifest = mf.build_manifest(home, excludes=["notes-hardlink.txt"])

    assert manifest["data/notes.txt"].link is None
    assert manifest.excludes == ("notes-hardlink.txt",)


@pytest.mark.parametrize("pattern", ["", "/", 3])
def test_bad_exclude_patterns_are_refused(home, pattern):
    with pytest.raises(mf.ManifestError):
        mf.build_manifest(home, excludes=[pattern])


# --- files -------------------------------------------------------------------------------------

def test_write_and_read_give_back_the_same_manifest(home, tmp_path):
    manifest = mf.build_manifest(home, excludes=["*.log"])
    path = str(tmp_path / "alice.manifest.jsonl")

    assert mf.write_manifest(manifest, path) == path
    copy = mf.read_manifest(path)

    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert copy.entries == manifest.entries
    assert copy.digest == manifest.digest
    assert (copy.root, copy.hash_content, copy.excludes, copy.counts) == (home, True, ("*.log",), manifest.counts)
    assert mf.compare_manifests(manifest, copy) == []
    header = json.loads(open(path).readline())
    assert header["format"] == mf.FORMAT and header["digest"] == manifest.digest


@pytest.mark.parametrize("damage", ["truncate", "edit", "header", "version", "garbage", "empty"])
def test_a_damaged_manifest_file_is_refused(home, tmp_path, damage):
    path = str(tmp_path / "m.jsonl")
    mf.write_manifest(mf.build_manifest(home), path)
    lines = open(path).read().splitlines()
    if damage == "truncate":
        lines = lines[:-1]
    elif damage == "edit":
        lines[3] = lines[3].replace('"mtime_ns":', '"mtime_ns":1')
    elif damage == "header":
        lines[0] = "{}"
    elif damage == "version":
        lines[0] = lines[0].replace('"version": 1', '"version": 99')
    elif damage == "garbage":
        lines[2] = "not json"
    else:
        lines = []
    with open(path, "w") as handle:
        handle.write("\n".join(lines))

    with pytest.raises(mf.ManifestError):
        mf.read_manifest(path)


# --- size and the real copy tool ---------------------------------------------------------------

def test_twenty_thousand_files(tmp_path):
    root = tmp_path / "big"
    for group in range(100):
        directory = root / ("d%03d" % group)
        directory.mkdir(parents=True)
        for number in range(200):
            (directory / ("f%03d" % number)).write_bytes(b"%d/%d" % (group, number))

    manifest = mf.build_manifest(str(root))

    assert manifest.counts["files"] == 20000
    assert manifest.counts["dirs"] == 101
    assert manifest.digest == mf.manifest_digest(manifest)


@pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed")
def test_a_copy_by_rsync_has_the_same_manifest(home, tmp_path):
    # --modify-window=-1: rsync otherwise leaves the times of directories, symlinks and special
    # files alone when they are in the same second as the copy's (it compares seconds only).
    copy = str(tmp_path / "copy")
    subprocess.run(["rsync", "-aH", "--numeric-ids", "--modify-window=-1", home + "/", copy + "/"], check=True)

    assert diff_fields(mf.build_manifest(home), mf.build_manifest(copy)) == []


# --- the module's per-account snapshot ---------------------------------------------------------

def account(home):
    spec = validate_spec({
        "name": "alice", "uid": 10001, "gid": 10001,
        "databases": [{"engine": "postgresql", "name": "alice_app", "users": []}],
    }, "/etc/hosting/accounts/alice.yml")
    return dataclasses.replace(spec, home=home)


def fake_run(argv, stdin=None):
    """psql answering for an empty database alice_app that exists."""
    if "pg_database WHERE datname" in stdin and "current_database" not in stdin:
        return "1\n"
    if "information_schema" in stdin and "'column'" in stdin:
        return "schema|1\n"
    return ""


def test_account_snapshot_digests_files_databases_and_crontab(home, tmp_path):
    crontabs = tmp_path / "crontabs"
    crontabs.mkdir()
    (crontabs / "alice").write_text("@daily true\n")
    manifests = tmp_path / "manifests"
    manifests.mkdir()

    snapshot = account_snapshot_info.account_snapshot(
        account(home), fake_run, manifest_dir=str(manifests), crontab_dir=str(crontabs), details=True)

    assert snapshot["files"]["digest"] == mf.build_manifest(home).digest
    assert snapshot["files"]["files"] == 9
    assert snapshot["files"]["manifest_path"] == str(manifests / "alice.manifest.jsonl")
    assert mf.read_manifest(snapshot["files"]["manifest_path"]).digest == snapshot["files"]["digest"]
    assert len(snapshot["files"]["manifest"]) == 18
    assert [(db["engine"], db["name"], db["exists"], db["tables"]) for db in snapshot["databases"]] == [
        ("postgresql", "alice_app", True, {})]
    assert snapshot["crontab"] == hashlib.sha256(b"@daily true\n").hexdigest()
    json.dumps(snapshot)  # plain data only

    (crontabs / "alice").write_text("@hourly true\n")
    again = account_snapshot_info.account_snapshot(account(home), fake_run, crontab_dir=str(crontabs))
    assert again["digest"] != snapshot["digest"]
    assert again["files"]["digest"] == snapshot["files"]["digest"]

    (crontabs / "alice").unlink()
    without = account_snapshot_info.account_snapshot(account(str(tmp_path / "nohome")), fake_run,
                                                     crontab_dir=str(crontabs))
    assert (without["files"], without["crontab"]) == (None, None)
