"""Bulk copy: 1 GiB of mixed files in alice's home moved dedicated1 -> transit1, against tar | ssh | tar.

The home gets ~/bench: a few large files and many small ones in deep directories, random
content (incompressible). The move (hosting.migration.migrate_account, account=alice) is timed
as a whole; its pre-copy (the rsync of the whole home while the account is live) and its final
sync (an rsync of the unchanged home: the delta re-run) are the rsync times account_sync
reports. The same home is then copied by tar | ssh | tar from dedicated1 into a scratch
directory of transit1, with a temporary key and transit1's host key read from the container."""
import sys
import pathlib

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import lablib  # noqa: E402

MIB = 1024 * 1024
# Run inside dedicated1: writes the data, prints the bytes and files written.
GENERATE = r"""
import os, random, sys
root, total = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
written = files = 0
large = [total // 8] * 4                       # half of it in four large files
for number, size in enumerate(large):
    os.makedirs(f"{root}/media", exist_ok=True)
    with open(f"{root}/media/video-{number}.bin", "wb") as out:
        for _ in range(size // (4 << 20)):
            out.write(os.urandom(4 << 20))
        out.write(os.urandom(size % (4 << 20)))
    written += size
    files += 1
while written < total:                         # the rest: 2 KiB to 400 KiB, up to 7 levels deep
    depth = rng.randint(1, 7)
    folder = "/".join(f"d{rng.randint(0, 3)}" for _ in range(depth))
    os.makedirs(f"{root}/tree/{folder}", exist_ok=True)
    size = min(total - written, int(rng.choice([2, 8, 16, 40, 100, 250, 400]) * 1024 * rng.uniform(0.5, 1)))
    with open(f"{root}/tree/{folder}/f{files:06d}.dat", "wb") as out:
        out.write(os.urandom(size))
    written += size
    files += 1
print(written, files)
"""


def make_data(account, total):
    home = f"/home/{account}"
    out = lablib.on("dedicated1", f"rm -rf {home}/bench && python3 - {home}/bench {total} "
                    f"&& chown -R {account}: {home}/bench && sync", stdin=GENERATE)
    written, files = map(int, out.split())
    return written, files


def tar_ssh_tar(account):
    """Seconds of tar | ssh | tar of the account's home, dedicated1 -> transit1:/root/bench-scratch."""
    target = "10.77.0.30"
    host_key = lablib.on("transit1", "cat /etc/ssh/ssh_host_ed25519_key.pub").split()
    lablib.on("dedicated1", f"""rm -f /root/bench-key /root/bench-key.pub
ssh-keygen -q -t ed25519 -N '' -C bench-tar -f /root/bench-key
echo '{target} {host_key[0]} {host_key[1]}' > /root/bench-known_hosts""")
    public = lablib.on("dedicated1", "cat /root/bench-key.pub").strip()
    lablib.run(["podman", "exec", "transit1", "sh", "-c", 'umask 077; echo "$0" >> /root/.ssh/authorized_keys; '
                'rm -rf /root/bench-scratch; mkdir /root/bench-scratch', public])
    try:
        out = lablib.on("dedicated1", f"""sync; start=$EPOCHREALTIME
tar -C /home/{account} -cf - . | ssh -i /root/bench-key -o IdentitiesOnly=yes -o BatchMode=yes \\
  -o UserKnownHostsFile=/root/bench-known_hosts -o StrictHostKeyChecking=yes root@{target} \\
  'tar -C /root/bench-scratch -xf - && sync'
echo "$start $EPOCHREALTIME" """)
        start, end = map(float, out.split())
        copied = int(lablib.on("transit1", "du -sb /root/bench-scratch | cut -f1"))
        return end - start, copied
    finally:
        lablib.on("dedicated1", "rm -f /root/bench-key /root/bench-key.pub /root/bench-known_hosts")
        lablib.on("transit1", "grep -v ' bench-tar$' /root/.ssh/authorized_keys > /root/.ssh/ak.new || true; "
                  "cat /root/.ssh/ak.new > /root/.ssh/authorized_keys; rm -f /root/.ssh/ak.new; "
                  "rm -rf /root/bench-scratch")


def run():
    account = "alice"
    setup = lablib.ensure_lab(accounts_needed=[account])
    total = max(MIB, int(1024 * MIB * lablib.scale()))
    lablib.log(f"writing {total / MIB:.0f} MiB into {account}'s home")
    lablib.touch([account])
    written, files = make_data(account, total)

    lablib.log("tar | ssh | tar, first run")
    tar_before, tar_bytes = tar_ssh_tar(account)
    lablib.log(f"moving {account}")
    wall, report = lablib.playbook("migrate_account", {
        "migration_server": "dedicated1", "migration_target": "transit1", "account": account})
    precopy_task_s, precopy = lablib.task_results(report, "Pre-copy of the home while the account stays live")[0]
    final_task_s, final = lablib.task_results(report, "Final sync of the home")[0]
    move = [m for m in lablib.moves() if m["account"] == account][-1]
    lablib.log("tar | ssh | tar, second run")
    tar_after, _ = tar_ssh_tar(account)
    tar_s = (tar_before + tar_after) / 2
    size_note = f"{written / MIB:.0f} MiB in {files} files of ~/bench, home {tar_bytes / MIB:.0f} MiB"
    return [
        lablib.row("account data written", round(written / MIB), "MiB", size_note),
        lablib.row("move: pre-copy (rsync of the home)", round(precopy["elapsed_s"], 2), "s",
                   f"account_sync elapsed_s; {precopy['stats']['bytes_sent'] / MIB:.0f} MiB sent; task {precopy_task_s:.2f} s"),
        lablib.row("tar | ssh | tar, same home", round(tar_s, 2), "s",
                   f"mean of a run before ({tar_before:.2f} s) and after ({tar_after:.2f} s) the move"),
        lablib.row("pre-copy throughput / tar|ssh|tar throughput", round(tar_s / precopy["elapsed_s"], 2), "ratio",
                   "target: at least 0.9"),
        lablib.row("move: final sync (unchanged rsync re-run)", round(final["elapsed_s"], 2), "s",
                   f"{final['changes']} entries changed; task {final_task_s:.2f} s"),
        lablib.row("move: freeze window", round(move["freeze_window_s"], 2), "s", "ledger: frozen -> switched"),
        lablib.row("move: whole playbook (wall)", round(wall, 2), "s", f"ledger step {move['step']}"),
        lablib.row("lab set-up", round(setup), "s", "lab-up when the lab was not fresh; 0 otherwise"),
    ]
