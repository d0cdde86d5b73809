#!/usr/bin/env python3
"""Write the lab's account definitions: one spec per account (for /etc/hosting/accounts/), the
passwords the sites use, and accounts.json (what the prober and the tests expect).

Everything is derived from the account's number and a per-lab secret, so re-running gives the
same accounts; nothing here is a fixed password. The accounts are numbered across the customer
servers in the order given (--server, once per server): with three on dedicated1, dedicated2's
first account is the fourth (dave)."""
import argparse
import hashlib
import hmac
import importlib.util
import json
import os
import pathlib
import secrets
import sys

TOP = pathlib.Path(__file__).resolve().parents[2]
FIRST_NAMES = ["alice", "bob", "carol", "dave", "erin"]
FIRST_UID = 10001
# The TTL of the provider's records of the lab's accounts (LAB_DNS_TTL; tests lower it to keep
# the wait for old answers to expire short).
TTL = int(os.environ.get("LAB_DNS_TTL", "300"))


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


account_spec = _load("account_spec", TOP / "plugins/module_utils/account_spec.py")
lab_data = _load("lab_data", TOP / "lab/files/lab_data.py")


def account_name(number):
    return FIRST_NAMES[number - 1] if number <= len(FIRST_NAMES) else f"acct{number:03d}"


def derived(secret, *parts):
    return hmac.new(secret, ":".join(parts).encode(), hashlib.sha256).digest()


def build_account(number, secret, ipv4_addresses, ipv6_addresses):
    name = account_name(number)
    password = derived(secret, name, "password").hex()[:24]
    db_name = f"{name}_app"
    dns_domains = [f"{name}.hosted.test", f"www.{name}.hosted.test"]
    if number % 2 == 0:
        dns_domains.append(f"{name}.shop.test")
    external_domains = [f"{name}.example"]
    spec = {
        "name": name,
        "uid": FIRST_UID + number - 1,
        "gid": FIRST_UID + number - 1,
        "sites": [{
            "name": "main",
            "domains": dns_domains + external_domains,
            "document_root": "www",
            "php": "8.2",
        }],
        "databases": [
            {"engine": "mariadb", "name": db_name,
             "users": [{"name": db_name, "password_hash": account_spec.mariadb_native_hash(password)}]},
            {"engine": "postgresql", "name": db_name,
             "users": [{"name": db_name, "password_hash": account_spec.postgres_scram_hash(
                 password, salt=derived(secret, name, "salt")[:16])}]},
        ],
        "cron": [{"schedule": "*/5 * * * *", "command": "date > $HOME/cron.last"}],
        "mailboxes": [{"address": f"{name}@{dns_domains[0]}", "maildir": "Maildir"}],
    }
    address_v4 = ipv4_addresses[(number - 1) % len(ipv4_addresses)]
    expected = {
        "name": name,
        "digest": lab_data.site_digest(name),
        "dns_domains": dns_domains,
        "external_domains": external_domains,
        "service_addresses": [address_v4] + ipv6_addresses,
        "records": [{"name": domain, "type": "A", "address": address_v4} for domain in dns_domains]
        + [{"name": domain, "type": "AAAA", "address": address} for domain in dns_domains for address in ipv6_addresses],
    }
    return spec, password, expected


def server_argument(value):
    """NAME:COUNT:ADDRESS,... (IPv6 addresses keep their colons: only the first two split)."""
    try:
        name, count, addresses = value.split(":", 2)
        count = int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not NAME:COUNT:ADDRESS,ADDRESS,...") from None
    if not name or not 1 <= count <= 999:
        raise argparse.ArgumentTypeError(f"{value!r}: a server name and between 1 and 999 accounts (LAB_ACCOUNTS)")
    addresses = [address for address in addresses.split(",") if address]
    if not any(":" not in address for address in addresses):
        raise argparse.ArgumentTypeError(f"{value!r}: at least one IPv4 service address")
    return name, count, addresses


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", action="append", required=True, type=server_argument,
                        help="NAME:COUNT:ADDRESS,ADDRESS,... a customer server, how many accounts it holds and "
                             "its service addresses; repeat for each customer server")
    parser.add_argument("--name-server", required=True)
    parser.add_argument("--state", default=os.environ.get("HOSTING_LAB_STATE", "/var/lib/hosting-lab"))
    args = parser.parse_args()
    if sum(count for _, count, _ in args.server) > 999:
        sys.exit("the lab holds at most 999 accounts in all")

    state = pathlib.Path(args.state)
    secret_file = state / "accounts.secret"
    if not secret_file.exists():
        secret_file.write_bytes(secrets.token_bytes(32))
        secret_file.chmod(0o600)
    secret = secret_file.read_bytes()
    specs, passwords, expected = [], {}, []
    number = 0
    for server, count, addresses in args.server:
        ipv4 = [a for a in addresses if ":" not in a]
        ipv6 = [a for a in addresses if ":" in a]
        for _ in range(count):
            number += 1
            spec, password, account = build_account(number, secret, ipv4, ipv6)
            account["server"] = server
            specs.append(spec)
            passwords[spec["name"]] = password
            expected.append(account)

    out = state / "accounts"
    out.mkdir(mode=0o700, exist_ok=True)
    for spec in specs:
        text = account_spec.dump_spec(account_spec.validate_spec(spec, f"{spec['name']}.yml"))
        _write_if_changed(out / f"{spec['name']}.yml", text)
    _write_if_changed(out / "passwords.json", json.dumps(passwords, indent=1, sort_keys=True))
    summary = {"name_server": args.name_server, "name_server_port": 53, "ttl": TTL, "accounts": expected}
    _write_if_changed(state / "accounts.json", json.dumps(summary, indent=1))
    print(json.dumps({"accounts": [spec["name"] for spec in specs]}))


def _write_if_changed(path, text):
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
        path.chmod(0o600)


if __name__ == "__main__":
    main()
