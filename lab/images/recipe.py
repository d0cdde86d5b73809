"""Print what the image builder needs from the catalogue: codename and package list of a version,
or (with --mirror) the Debian mirror this host's apt already uses."""
import pathlib
import re
import sys

import yaml


def mirror():
    for path in sorted(pathlib.Path("/etc/apt").glob("sources.list.d/*.sources")):
        for stanza in path.read_text().split("\n\n"):
            if re.search(r"^Suites:.*\b(bookworm|trixie)\b", stanza, re.M) and "security" not in stanza:
                found = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
                if found:
                    return found.group(1)
    sources = pathlib.Path("/etc/apt/sources.list")
    if sources.exists():
        for line in sources.read_text().splitlines():
            parts = line.split()
            if len(parts) > 2 and parts[0] == "deb" and "security" not in parts[1]:
                return parts[1]
    sys.exit("no Debian mirror found in this host's apt sources; set LAB_DEBIAN_MIRROR")


def main(argv):
    if argv[1:] == ["--mirror"]:
        print(mirror())
        return
    catalogue_path, version = argv[1], argv[2]
    catalogue = yaml.safe_load(pathlib.Path(catalogue_path).read_text())["infrastructure_catalogue"]
    if version not in catalogue:
        sys.exit(f"infrastructure version {version!r} is not in the catalogue ({', '.join(catalogue)})")
    entry = catalogue[version]
    packages = list(entry.get("base_packages", []))
    for service in entry["services"].values():
        packages.extend(service["packages"])
    print(entry["os"]["codename"], " ".join(packages))


if __name__ == "__main__":
    main(sys.argv)
