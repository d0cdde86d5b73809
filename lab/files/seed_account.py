#!/usr/bin/python3
"""Fill a lab account with content, once: the site (index.php reading both databases), files of
the requested size (with a symlink and a hard link), a few mails, and the database tables.

Runs on the lab server as root: seed_account.py NAME PASSWORD_FILE FILES_MB DB_MB"""
import json
import os
import pathlib
import pwd
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab_data  # noqa: E402

INDEX_PHP = r"""<?php
// The lab's test page: reads the account's two databases and prints a digest of what it read.
$cfg = require __DIR__ . '/../config.php';
$hash = hash_init('sha256');
$my = new mysqli('localhost', $cfg['db_user'], $cfg['db_password'], $cfg['db_name']);
$result = $my->query('SELECT id, payload FROM items ORDER BY id');
while ($row = $result->fetch_row()) { hash_update($hash, $row[0] . ':' . $row[1] . "\n"); }
$pg = pg_connect(sprintf("host=127.0.0.1 dbname=%s user=%s password=%s",
    $cfg['db_name'], $cfg['db_user'], $cfg['db_password']));
$result = pg_query($pg, 'SELECT id, payload FROM items ORDER BY id');
while ($row = pg_fetch_row($result)) { hash_update($hash, $row[0] . ':' . $row[1] . "\n"); }
header('Content-Type: text/plain');
printf("account: %s\nphp: %s\ndigest: %s\n", $cfg['account'], PHP_VERSION, hash_final($hash));
"""

MAIL = """From: lab@hosted.test
To: {address}
Subject: lab message {number}
Message-ID: <{number}.{account}@hosted.test>

Message {number} for {account}.
"""


def run(argv, stdin=None):
    subprocess.run(argv, input=stdin, text=True, check=True, capture_output=True)


def seed_files(home, account, password, files_mb, user):
    www = home / "www"
    www.mkdir(exist_ok=True)
    (www / "index.php").write_text(INDEX_PHP)
    config = home / "config.php"
    config.write_text("<?php return " + _php_array({
        "account": account, "db_name": f"{account}_app", "db_user": f"{account}_app", "db_password": password,
    }) + ";\n")
    config.chmod(0o600)
    data = home / "data"
    data.mkdir(exist_ok=True)
    chunk = 256 * 1024
    for number in range(max(1, files_mb * 4)):
        (data / f"blob-{number:05d}.bin").write_bytes(os.urandom(chunk))
    (data / "notes.txt").write_text(f"notes of {account}\n")
    if not (data / "notes-hardlink.txt").exists():
        os.link(data / "notes.txt", data / "notes-hardlink.txt")
    if not (data / "latest").is_symlink():
        (data / "latest").symlink_to("notes.txt")
    maildir = home / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    for number in range(1, 4):
        folder = "cur" if number < 3 else "new"
        (maildir / folder / f"1700000000.{number}.lab:2,S").write_text(
            MAIL.format(address=f"{account}@{account}.hosted.test", number=number, account=account))
    run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(www), str(config), str(data), str(maildir)])


def _php_array(values):
    return "[" + ", ".join(f"{json.dumps(k)} => {json.dumps(v)}" for k, v in values.items()) + "]"


def seed_mariadb(account, db_mb):
    db = f"{account}_app"
    rows = ",".join(f"({i},'{p}')" for i, p in lab_data.item_rows(account, "mariadb"))
    run(["mariadb", db], f"""
CREATE TABLE IF NOT EXISTS items (id INT PRIMARY KEY, payload VARCHAR(64) NOT NULL);
REPLACE INTO items VALUES {rows};
CREATE TABLE IF NOT EXISTS bulk (id INT PRIMARY KEY, payload TEXT NOT NULL);
REPLACE INTO bulk SELECT seq, REPEAT(MD5(seq), 30) FROM seq_1_to_{max(1, db_mb * 1000)};
""")


def seed_postgresql(account, db_mb):
    db = f"{account}_app"
    rows = ",".join(f"({i},'{p}')" for i, p in lab_data.item_rows(account, "postgresql"))
    run(["runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-q", db], f"""
SET ROLE {db};
CREATE TABLE IF NOT EXISTS items (id INT PRIMARY KEY, payload VARCHAR(64) NOT NULL);
INSERT INTO items VALUES {rows} ON CONFLICT (id) DO UPDATE SET payload = EXCLUDED.payload;
CREATE TABLE IF NOT EXISTS bulk (id INT PRIMARY KEY, payload TEXT NOT NULL);
INSERT INTO bulk SELECT g, REPEAT(MD5(g::text), 30) FROM generate_series(1, {max(1, db_mb * 1000)}) g
  ON CONFLICT (id) DO NOTHING;
""")


def main(argv):
    account, password_file, files_mb, db_mb = argv[1], argv[2], int(argv[3]), int(argv[4])
    password = json.loads(pathlib.Path(password_file).read_text())[account]
    user = pwd.getpwnam(account)
    home = pathlib.Path(user.pw_dir)
    seed_files(home, account, password, files_mb, user)
    seed_mariadb(account, db_mb)
    seed_postgresql(account, db_mb)
    (home / ".lab-seeded").write_text("seeded\n")


if __name__ == "__main__":
    main(sys.argv)
