"""Stand-in for the pip bootstrap script ansible-test downloads from a host this machine cannot
reach: bootstraps pip with the standard library's ensurepip, then lets that pip install what
ansible-test asked for (from the package index, which is reachable).

tests/run.sh copies it to ~/.ansible/test/cache/get_pip_<version>.py."""
import ensurepip
import os
import subprocess
import sys

GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}


def main():
    # ensurepip points PIP_CONFIG_FILE at /dev/null for itself; the install after it must see
    # the host's pip configuration again.
    environment = dict(os.environ)
    ensurepip.bootstrap(upgrade=True)
    arguments = [argument for argument in sys.argv[1:] if argument not in GET_PIP_ONLY_OPTIONS]
    sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + arguments, env=environment))


if __name__ == "__main__":
    main()
