"""Put the checkout on sys.path as ansible_collections.hosting.migration, the way Ansible sees it."""
import pathlib
import sys

TOP = pathlib.Path(__file__).resolve().parents[2]
LINK_ROOT = TOP / ".collections"
LINK = LINK_ROOT / "ansible_collections" / "hosting" / "migration"

if not LINK.exists():
    LINK.parent.mkdir(parents=True, exist_ok=True)
    LINK.symlink_to("../../..")
if str(LINK_ROOT) not in sys.path:
    sys.path.insert(0, str(LINK_ROOT))
