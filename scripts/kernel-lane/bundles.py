"""Writes the bundles the guest tests use: config.json files made from `lcr spec`, with the
rootfs at /rootfs and the limits under test. The one-guest set ("one", the default) mounts a
guest directory /out-NAME at /out; the two-guest set ("two") has no mount from the guest (its
bundles travel with --rootfs copy to a guest that has none of the source's paths): memtouch
prints its ticks and clock stamps to the container's stdout."""
import json, os, subprocess, sys, tempfile

lcr, dest = sys.argv[1], sys.argv[2]
which = sys.argv[3] if len(sys.argv) > 3 else "one"
with tempfile.TemporaryDirectory() as d:
    subprocess.run([lcr, "spec", "--bundle", d], check=True)
    base = json.load(open(os.path.join(d, "config.json")))

COUNTER = "i=0; while :; do i=$((i+1)); echo $i > /out/n.tmp; mv /out/n.tmp /out/n; sleep 0.05; done"
TICKS = "exec memtouch 64 >> /out/ticks"

def bundle(name, cgroup, args, out=None, memory=None, pids=None, cpu=None):
    c = json.loads(json.dumps(base))
    c["root"] = {"path": "/rootfs", "readonly": False}
    c["process"]["terminal"] = False
    c["process"]["args"] = ["sh", "-c", args]
    c["linux"]["cgroupsPath"] = cgroup
    # The guest's network namespace: CRIU's dump of a container netns fails on this kernel
    # ("Dumping netns links: -22 reported by netlink"), which the host lane covers instead.
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
    res = c["linux"].setdefault("resources", {})
    if memory: res["memory"] = {"limit": memory}
    if pids: res["pids"] = {"limit": pids}
    if cpu: res["cpu"] = {"quota": cpu[0], "period": cpu[1]}
    if out:
        c["mounts"].append({"destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]})
    os.makedirs(os.path.join(dest, name), exist_ok=True)
    json.dump(c, open(os.path.join(dest, name, "config.json"), "w"), indent=1)

if which == "two":
    # Per test: strategy moves (pre, post, stop), faults (cut, kill), a refusal (old).
    for name, mib in [("pre", 64), ("post", 64), ("stop", 64), ("cut", 192), ("kill", 192), ("old", 16)]:
        bundle(name, "/lcr-two/" + name, f"exec memtouch {mib} /tmp/ready-{name} mixed stamp",
               memory=384 << 20, pids=64, cpu=(150000, 100000))
    sys.exit(0)

bundle("limits", "/lcr-lane/limits", COUNTER, "/out-a", memory=64 << 20, pids=32, cpu=(50000, 100000))
bundle("restored", "/lcr-lane/restored", COUNTER, "/out-a", memory=96 << 20, pids=40, cpu=(20000, 100000))
# Waits for /out/go, then asks for a 64 MiB buffer under a 16 MiB memory.max (no swap).
bundle("oom", "/lcr-lane/oom", "while [ ! -e /out/go ]; do sleep 0.05; done; dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 1",
       "/out-c", memory=16 << 20)
bundle("ticks", "/lcr-lane/ticks", TICKS, "/out-b")
bundle("ticks2", "/lcr-lane/ticks2", TICKS, "/out-b")
