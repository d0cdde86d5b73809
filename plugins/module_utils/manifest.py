# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The manifest of a directory tree (an account's home), to prove two copies equal.

One entry per path below the root (the root itself as "."), sorted by path, with what a copy
made by ``rsync -aH --numeric-ids`` preserves: type, permission bits, numeric owner and group,
size, modification time in nanoseconds (directories and symlinks included: rsync sets them at
the end of the copy), symlink target, device numbers, hard-link group and, for regular files,
the SHA-256 of the content. ``docs/verification.md`` describes the format and its limits.

Standard library only: this runs on the managed servers inside a module.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import collections
import hashlib
import json
import os
import re
import stat

FORMAT = "hosting.migration.manifest"
VERSION = 1
CHUNK_SIZE = 1024 * 1024

# The order of the fields is the order of the canonical form: never reorder, only append (and
# raise VERSION).
FIELDS = ("path", "type", "mode", "uid", "gid", "size", "mtime_ns", "target", "device", "link", "sha256")

Entry = collections.namedtuple("Entry", FIELDS)

_TYPES = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "char",
    stat.S_IFBLK: "block",
}
SPECIAL_TYPES = ("fifo", "socket", "char", "block")

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_NOATIME = getattr(os, "O_NOATIME", 0)


class ManifestError(Exception):
    """A tree cannot be read, or a manifest file is not a valid manifest."""


def _text(raw):
    """A file name as text, the same on every machine: UTF-8, other bytes kept as surrogates."""
    return raw.decode("utf-8", "surrogateescape")


def _raw(text):
    return text.encode("utf-8", "surrogateescape")


def _sort_key(path):
    # The root first, then by the bytes of the path: the same order everywhere.
    return (path != ".", _raw(path))


# --- excludes --------------------------------------------------------------------------------

def _glob_to_regex(pattern):
    """``**`` matches anything, ``*`` and ``?`` anything but '/', ``[...]`` a class (``[!...]``
    negated); every other character matches itself."""
    out = []
    index, length = 0, len(pattern)
    while index < length:
        char = pattern[index]
        if char == "*":
            if pattern.startswith("**", index):
                out.append(".*")
                index += 2
                continue
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = index + 1
            if end < length and pattern[end] in "!^":
                end += 1
            if end < length and pattern[end] == "]":
                end += 1
            while end < length and pattern[end] != "]":
                end += 1
            if end >= length:
                out.append(re.escape(char))
            else:
                body = pattern[index + 1:end]
                negate = body[:1] in ("!", "^")
                if negate:
                    body = body[1:]
                body = body.replace("\\", "\\\\")
                out.append("[%s%s]" % ("^" if negate else "", body))
                index = end
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)


class _Excludes(object):
    """Relative glob patterns. A pattern with a '/' matches the whole relative path (a leading
    '/' or './' only anchors it at the root); one without matches the name at any depth. A
    trailing '/' restricts it to directories. An excluded directory is not entered."""

    def __init__(self, patterns):
        if isinstance(patterns, str):
            patterns = [patterns]
        groups = {(False, False): [], (False, True): [], (True, False): [], (True, True): []}
        for pattern in patterns:
            if not isinstance(pattern, str) or not pattern.strip("/"):
                raise ManifestError("exclude pattern %r is empty or not a string" % (pattern,))
            dirs_only = pattern.endswith("/")
            pattern = pattern.rstrip("/")
            if pattern.startswith("./"):
                pattern = pattern[2:]
            anchored = "/" in pattern
            pattern = pattern.lstrip("/")
            groups[(anchored, dirs_only)].append(_glob_to_regex(pattern))
        self.patterns = tuple(patterns)
        self._regexes = dict((key, re.compile("(?s:%s)\\Z" % "|".join("(?:%s)" % part for part in parts)))
                             for key, parts in groups.items() if parts)

    def __bool__(self):
        return bool(self._regexes)

    __nonzero__ = __bool__

    def excluded(self, path, name, is_dir):
        for (anchored, dirs_only), regex in self._regexes.items():
            if dirs_only and not is_dir:
                continue
            if regex.match(path if anchored else name):
                return True
        return False


# --- building ----------------------------------------------------------------------------------

def _walk(root, excludes):
    """(relative path as bytes, lstat result) for the root and everything below it."""
    found = [(b".", os.lstat(root))]
    stack = [(root, b"")]
    while stack:
        directory, prefix = stack.pop()
        try:
            iterator = os.scandir(directory)
        except FileNotFoundError:
            continue  # removed since it was listed
        except OSError as error:
            raise ManifestError("cannot list %s: %s" % (_text(directory), error.strerror or error))
        with iterator:
            for item in iterator:
                relative = prefix + b"/" + item.name if prefix else item.name
                try:
                    info = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                except OSError as error:
                    raise ManifestError("cannot read %s: %s" % (_text(item.path), error.strerror or error))
                is_dir = stat.S_ISDIR(info.st_mode)
                if excludes and excludes.excluded(_text(relative), _text(item.name), is_dir):
                    continue
                found.append((relative, info))
                if is_dir:
                    stack.append((item.path, relative))
    return found


def _open_for_reading(path):
    try:
        return os.open(path, _READ_FLAGS | _NOATIME)
    except PermissionError:
        if not _NOATIME:
            raise
        # O_NOATIME is refused on files of other owners without CAP_FOWNER.
        return os.open(path, _READ_FLAGS)


def file_sha256(path):
    """SHA-256 of a regular file's content, read in 1 MiB chunks; refuses anything else (a FIFO
    or a device put in its place would block or never end)."""
    descriptor = _open_for_reading(path)
    with os.fdopen(descriptor, "rb", buffering=0) as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise ManifestError("%s is no longer a regular file" % _text(os.fsencode(path)))
        digest = hashlib.sha256()
        buffer = bytearray(CHUNK_SIZE)
        view = memoryview(buffer)
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
    return digest.hexdigest()


def build_manifest(root, excludes=(), hash_content=True):
    """The manifest of the tree at ``root`` (which must be a directory, not a symlink to one).

    ``excludes``: relative glob patterns (see ``_Excludes``); ``hash_content=False`` leaves
    ``sha256`` empty, so files are compared by size and modification time only.
    """
    raw_root = os.fsencode(root)
    try:
        root_info = os.lstat(raw_root)
    except OSError as error:
        raise ManifestError("cannot read %s: %s" % (root, error.strerror or error))
    if not stat.S_ISDIR(root_info.st_mode):
        raise ManifestError("%s is not a directory" % root)
    matcher = _Excludes(excludes)
    found = _walk(raw_root, matcher)
    found.sort(key=lambda item: (item[0] != b".", item[0]))

    paths_of_inode = {}
    for relative, info in found:
        if info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode):
            paths_of_inode.setdefault((info.st_dev, info.st_ino), []).append(relative)
    # Only links inside the tree count: a file linked from outside is a single file here, as it
    # is in a copy made with rsync -H.
    group_of = {}
    for paths in paths_of_inode.values():
        if len(paths) > 1:
            for relative in paths:
                group_of[relative] = _text(paths[0])

    hashed = {}
    entries = []
    for relative, info in found:
        kind = _TYPES.get(stat.S_IFMT(info.st_mode), "unknown")
        path = _text(relative)
        target = size = device = sha = None
        mode = stat.S_IMODE(info.st_mode)
        if kind == "file":
            size = info.st_size
            if hash_content:
                inode = (info.st_dev, info.st_ino)
                sha = hashed.get(inode)
                if sha is None:
                    full = os.path.join(raw_root, relative)
                    try:
                        sha = file_sha256(full)
                    except OSError as error:
                        raise ManifestError("cannot read %s: %s" % (_text(full), error.strerror or error))
                    hashed[inode] = sha
        elif kind == "symlink":
            # Permission bits of a symlink mean nothing on Linux and are not copied.
            mode = None
            try:
                target = _text(os.readlink(os.path.join(raw_root, relative)))
            except OSError as error:
                raise ManifestError("cannot read the link %s: %s" % (path, error.strerror or error))
        elif kind in ("char", "block"):
            device = "%d,%d" % (os.major(info.st_rdev), os.minor(info.st_rdev))
        entries.append(Entry(path, kind, mode, info.st_uid, info.st_gid, size, info.st_mtime_ns,
                             target, device, group_of.get(relative), sha))
    return Manifest(entries, root=root, hash_content=hash_content, excludes=matcher.patterns)


# --- the manifest ------------------------------------------------------------------------------

def count_entries(entries):
    """files, dirs, links (symlinks), special (fifos, sockets, devices), entries, hardlinked
    (entries that share their inode with another one) and bytes (regular files, each inode once:
    hard links are one file's data)."""
    counts = dict(entries=0, files=0, dirs=0, links=0, special=0, hardlinked=0, bytes=0)
    groups = set()
    for entry in entries:
        counts["entries"] += 1
        if entry.type == "file":
            counts["files"] += 1
            if entry.link is None or entry.link not in groups:
                counts["bytes"] += entry.size or 0
        elif entry.type == "dir":
            counts["dirs"] += 1
        elif entry.type == "symlink":
            counts["links"] += 1
        else:
            counts["special"] += 1
        if entry.link is not None:
            counts["hardlinked"] += 1
            groups.add(entry.link)
    return counts


class Manifest(object):
    """Entries sorted by path (iterable, ``len()``, ``manifest[path]``), their counts, and how
    they were taken (``root``, ``hash_content``, ``excludes``)."""

    def __init__(self, entries, root=None, hash_content=True, excludes=()):
        self.entries = tuple(sorted(entries, key=lambda entry: _sort_key(entry.path)))
        self.root = root
        self.hash_content = bool(hash_content)
        self.excludes = tuple(excludes)
        self.counts = count_entries(self.entries)
        self._by_path = None
        self._digest = None

    def __iter__(self):
        return iter(self.entries)

    def __len__(self):
        return len(self.entries)

    def __contains__(self, path):
        return path in self.by_path

    def __getitem__(self, path):
        return self.by_path[path]

    @property
    def by_path(self):
        if self._by_path is None:
            self._by_path = dict((entry.path, entry) for entry in self.entries)
        return self._by_path

    @property
    def digest(self):
        if self._digest is None:
            self._digest = manifest_digest(self)
        return self._digest

    def to_list(self):
        """The entries as plain dicts (for JSON)."""
        return [dict(zip(FIELDS, entry)) for entry in self.entries]

    def summary(self):
        summary = dict(self.counts)
        summary["digest"] = self.digest
        return summary


def _canonical_line(entry):
    return json.dumps(list(entry), ensure_ascii=True, separators=(",", ":"))


def manifest_digest(manifest):
    """SHA-256 (hex) of the canonical form: a first line naming the format and version, then one
    line per entry in path order, the entry's fields as a JSON array in the order of FIELDS,
    ASCII only (other characters escaped), no spaces. Nothing of the machine enters it (not the
    root's path, not the options), so equal trees give equal digests everywhere."""
    digest = hashlib.sha256(("%s %d\n" % (FORMAT, VERSION)).encode("ascii"))
    for entry in manifest:
        digest.update(_canonical_line(entry).encode("ascii"))
        digest.update(b"\n")
    return digest.hexdigest()


# --- comparing ---------------------------------------------------------------------------------

class Differences(list):
    """The differences found, up to the limit; ``total`` counts all of them."""

    total = 0

    @property
    def truncated(self):
        return self.total > len(self)


def _shown(field, value):
    if field == "mode" and value is not None:
        return "%04o" % value
    return value


def compare_manifests(a, b, limit=50):
    """Differences between manifest ``a`` (the source) and ``b`` (the target), in path order:
    ``{path, field, source, target}``. A path on one side only is field ``presence`` with its
    type on the side that has it and None on the other; entries of different types report
    ``type`` only. ``sha256`` is compared only when both manifests hashed content. Modes are
    shown in octal. At most ``limit`` differences are kept (None: all); ``total`` counts all."""
    fields = [field for field in FIELDS[1:] if field != "sha256" or (a.hash_content and b.hash_content)]
    found = Differences()
    total = 0
    source, target = a.by_path, b.by_path
    for path in sorted(set(source) | set(target), key=_sort_key):
        one, other = source.get(path), target.get(path)
        if one is None or other is None:
            changes = [("presence", one and one.type, other and other.type)]
        elif one.type != other.type:
            changes = [("type", one.type, other.type)]
        else:
            changes = [(field, getattr(one, field), getattr(other, field)) for field in fields
                       if getattr(one, field) != getattr(other, field)]
        for field, left, right in changes:
            total += 1
            if limit is None or len(found) < limit:
                found.append({"path": path, "field": field,
                              "source": _shown(field, left), "target": _shown(field, right)})
    found.total = total
    return found


# --- files -------------------------------------------------------------------------------------

def write_manifest(manifest, path):
    """Write a manifest as JSON lines: a header (format, version, root, options, counts,
    digest), then one JSON object per entry. Written to a temporary file beside ``path`` and
    renamed over it, mode 0600 (file names are the customer's)."""
    header = {
        "format": FORMAT, "version": VERSION, "root": manifest.root,
        "hash_content": manifest.hash_content, "excludes": list(manifest.excludes),
        "counts": manifest.counts, "digest": manifest.digest,
    }
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(json.dumps(header, ensure_ascii=True, sort_keys=True) + "\n")
            for entry in manifest:
                handle.write(json.dumps(dict(zip(FIELDS, entry)), ensure_ascii=True, separators=(",", ":")) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    return path


def read_manifest(path):
    """Read a manifest written by write_manifest; its recorded digest must match its entries
    (a truncated or edited file is refused)."""
    try:
        with open(path, "r", encoding="ascii") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestError("cannot read the manifest %s: %s" % (path, error))
    if not lines:
        raise ManifestError("%s: empty file, not a manifest" % path)
    try:
        header = json.loads(lines[0])
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ManifestError("%s: line 1: not a %s file" % (path, FORMAT))
    if header.get("version") != VERSION:
        raise ManifestError("%s: manifest version %r, this reader knows version %d"
                            % (path, header.get("version"), VERSION))
    entries = []
    for number, line in enumerate(lines[1:], 2):
        try:
            data = json.loads(line)
            entries.append(Entry(**dict((field, data[field]) for field in FIELDS)))
        except (ValueError, KeyError, TypeError) as error:
            raise ManifestError("%s: line %d: not a manifest entry (%s)" % (path, number, error))
    manifest = Manifest(entries, root=header.get("root"), hash_content=header.get("hash_content", True),
                        excludes=header.get("excludes") or ())
    if manifest.digest != header.get("digest"):
        raise ManifestError("%s: the entries do not match the recorded digest (truncated or edited)" % path)
    return manifest
