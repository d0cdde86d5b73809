"""Deterministic content of a lab account, shared by the controller (expected digests) and the
server (seeding). Standard library only: it runs on the lab servers too."""
import hashlib

ITEM_ROWS = 200


def item_rows(account, engine):
    """The rows of the `items` table the account's site reads: (id, payload)."""
    for row_id in range(1, ITEM_ROWS + 1):
        payload = hashlib.sha256(f"{account}:{engine}:{row_id}".encode()).hexdigest()
        yield row_id, payload


def site_digest(account):
    """What the account's PHP page prints: sha256 over both databases' items, in order."""
    digest = hashlib.sha256()
    for engine in ("mariadb", "postgresql"):
        for row_id, payload in item_rows(account, engine):
            digest.update(f"{row_id}:{payload}\n".encode())
    return digest.hexdigest()
