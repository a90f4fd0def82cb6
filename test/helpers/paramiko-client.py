"""paramiko driven against a capstan gateway, for test/sftp/paramiko.test.ts.

Usage: python3 paramiko-client.py SCENARIO CONFIG_JSON

CONFIG_JSON: {"port": n, "user": s, "password": s | null, "keyFile": s | null, "work": dir}.
Each scenario does what a paramiko program does and prints one JSON object
of what it saw; the test asserts on it and reads the stored bytes back
through another client. Exit status 0 unless paramiko raised where the
scenario did not expect it.
"""

import hashlib
import json
import os
import stat
import sys

import paramiko


def connect(cfg):
    transport = paramiko.Transport(("127.0.0.1", cfg["port"]))
    if cfg.get("keyFile"):
        transport.connect(username=cfg["user"], pkey=paramiko.Ed25519Key.from_private_key_file(cfg["keyFile"]))
    else:
        transport.connect(username=cfg["user"], password=cfg["password"])
    return transport, paramiko.SFTPClient.from_transport(transport)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def failure(fn):
    """The errno and text of the IOError fn raises, or None if it succeeds."""
    try:
        fn()
    except IOError as e:
        return {"errno": e.errno, "text": str(e)}
    return None


def transfer(s, work):
    src = os.path.join(work, "src.bin")
    with open(src, "rb") as f:
        data = f.read()
    attrs = s.put(src, "/pm/src.bin", confirm=True)
    back = os.path.join(work, "back.bin")
    s.get("/pm/src.bin", back)
    with open(back, "rb") as f:
        got = f.read()
    with s.open("/pm/src.bin", "rb") as f:
        f.prefetch()
        prefetched = f.read()
    ranges = [(0, 10), (len(data) - 10, 10), (100_000, 70_000)]
    with s.open("/pm/src.bin", "rb") as f:
        pieces = list(f.readv(ranges))
        checked = f.check("sha256").hex()
    # Pipelined writes (no wait for each status), as paramiko's putfo does.
    blob = hashlib.sha256(b"pipelined").digest() * 100_000
    with s.open("/pm/pipelined.bin", "wb") as f:
        f.set_pipelined(True)
        for i in range(0, len(blob), 32768):
            f.write(blob[i : i + 32768])
    return {
        "putSize": attrs.st_size,
        "sent": sha(data),
        "got": sha(got),
        "prefetched": sha(prefetched),
        "readv": [sha(p) == sha(data[o : o + n]) for (o, n), p in zip(ranges, pieces)],
        "check": checked,
        "pipelined": sha(blob),
        "pipelinedSize": s.stat("/pm/pipelined.bin").st_size,
    }


def edit(s, work):
    out = {}
    with s.open("/pm/edit.txt", "w") as f:
        f.write(b"hello")
        f.seek(10)
        f.write(b"world")
    out["hole"] = s.open("/pm/edit.txt").read().hex()
    with s.open("/pm/edit.txt", "a") as f:
        f.write(b"!")
    out["appended"] = s.open("/pm/edit.txt").read().hex()
    with s.open("/pm/edit.txt", "r+") as f:
        f.seek(0)
        f.write(b"J")
    out["overwritten"] = s.open("/pm/edit.txt").read().hex()
    s.truncate("/pm/edit.txt", 3)
    out["truncated"] = s.open("/pm/edit.txt").read().hex()
    s.utime("/pm/edit.txt", (1_000_000_000, 1_000_000_000))
    out["mtime"] = s.stat("/pm/edit.txt").st_mtime
    with s.open("/pm/edit.txt", "r+") as f:
        f.truncate(1)
        out["fstatSize"] = f.stat().st_size
    out["final"] = s.open("/pm/edit.txt").read().hex()
    return out


def names(s, work):
    out = {}
    s.chdir("/pm")
    out["cwd"] = s.getcwd()
    s.putfo(open(os.path.join(work, "small.txt"), "rb"), "rel.txt")
    s.mkdir("many")
    for i in range(600):
        s.open("many/f%04d" % i, "w").close()
    out["listdir"] = len(s.listdir("many"))
    out["listdirIter"] = len(list(s.listdir_iter("many")))
    attrs = s.listdir_attr("many")
    out["allFiles"] = all(stat.S_ISREG(a.st_mode) for a in attrs)
    s.rename("rel.txt", "renamed.txt")
    s.putfo(open(os.path.join(work, "small.txt"), "rb"), "other.txt")
    s.posix_rename("other.txt", "renamed.txt")
    s.symlink("renamed.txt", "link")
    out["readlink"] = s.readlink("link")
    out["lstatIsLink"] = stat.S_ISLNK(s.lstat("link").st_mode)
    out["statThroughLink"] = s.stat("link").st_size
    out["normalize"] = s.normalize("many/../renamed.txt")
    s.remove("many/f0000")
    out["afterRemove"] = len(s.listdir("many"))
    out["entries"] = sorted(s.listdir("."))
    return out


def errors(s, work):
    s.mkdir("/pe")
    s.putfo(open(os.path.join(work, "small.txt"), "rb"), "/pe/file")
    return {
        "removeMissing": failure(lambda: s.remove("/pe/nope")),
        "statMissing": failure(lambda: s.stat("/pe/nope")),
        "openInMissingDir": failure(lambda: s.open("/pe/nodir/x", "w")),
        "mkdirExisting": failure(lambda: s.mkdir("/pe")),
        "rmdirNotEmpty": failure(lambda: s.rmdir("/pe")),
        "listdirOfFile": failure(lambda: s.listdir("/pe/file")),
        "renameMissing": failure(lambda: s.rename("/pe/nope", "/pe/x")),
        "stillThere": s.stat("/pe/file").st_size,
    }


def login(s, work):
    return {"root": sorted(s.listdir("/")), "cwd": s.normalize(".")}


SCENARIOS = {"transfer": transfer, "edit": edit, "names": names, "errors": errors, "login": login}


def main():
    scenario, cfg = sys.argv[1], json.loads(sys.argv[2])
    transport, s = connect(cfg)
    try:
        print(json.dumps(SCENARIOS[scenario](s, cfg["work"])))
    finally:
        s.close()
        transport.close()


if __name__ == "__main__":
    main()
