"""AsyncSSH driven against a capstan gateway, for test/sftp/asyncssh.test.ts.

Usage: python3 asyncssh-client.py SCENARIO CONFIG_JSON

CONFIG_JSON: {"port": n, "user": s, "password": s | null, "keyFile": s | null, "work": dir}.
Each scenario does what an AsyncSSH program does and prints one JSON object
of what it saw; the test asserts on it and reads what was stored back
through another client. Exit status 0 unless AsyncSSH raised where the
scenario did not expect it.
"""

import asyncio
import hashlib
import json
import os
import sys
import warnings

# Debian's python3-cryptography warns about ciphers AsyncSSH imports but capstan never offers.
warnings.filterwarnings("ignore")

import asyncssh  # noqa: E402


def sha(data):
    return hashlib.sha256(data).hexdigest()


async def failure(coro):
    """The SFTP status code AsyncSSH raised for coro, or None if it succeeded."""
    try:
        await coro
    except asyncssh.SFTPError as e:
        return e.code
    return None


async def login(s, work):
    return {"root": sorted(await s.listdir("/")), "cwd": await s.realpath(".")}


async def transfer(s, work):
    src = os.path.join(work, "src.bin")
    with open(src, "rb") as f:
        data = f.read()
    await s.mkdir("/as")
    # put and get pipeline many block-sized requests at once (AsyncSSH's own parallelism).
    await s.put(src, "/as/src.bin", block_size=16384, max_requests=64)
    back = os.path.join(work, "back.bin")
    await s.get("/as/src.bin", back, block_size=65536, max_requests=32)
    with open(back, "rb") as f:
        got = f.read()
    async with s.open("/as/src.bin", "rb") as f:
        await f.seek(len(data) - 1000)
        tail = await f.read()
    # The client's own copy (read, then write) and a second upload over the first.
    await s.copy("/as/src.bin", "/as/copy.bin")
    await s.put(src, "/as/src.bin")
    return {
        "sent": sha(data),
        "got": sha(got),
        "tail": sha(tail) == sha(data[-1000:]),
        "size": (await s.stat("/as/src.bin")).size,
        "copySize": (await s.stat("/as/copy.bin")).size,
    }


async def edit(s, work):
    out = {}
    async with s.open("/as/edit.bin", "wb") as f:
        await f.write(b"x" * 100_000)
        await f.write(b"y" * 10, 200_000)  # past the end: a hole of zeros
        await f.fsync()
    out["size"] = (await s.stat("/as/edit.bin")).size
    async with s.open("/as/edit.bin", "r+b") as f:
        await f.write(b"ZZ", 5)
        await f.truncate(150_000)
    async with s.open("/as/edit.bin", "rb") as f:
        data = await f.read()
    out["edited"] = sha(data)
    await s.utime("/as/edit.bin", (1_000_000_000, 1_200_000_000))
    out["mtime"] = (await s.stat("/as/edit.bin")).mtime
    return out


async def names(s, work):
    out = {}
    await s.makedirs("/as/deep/er")
    await s.chdir("/as")
    out["cwd"] = await s.getcwd()
    async with s.open("target.txt", "w") as f:
        await f.write("the target\n")
    # SSH_FXP_SYMLINK: AsyncSSH sends the link's path first to a server that is not OpenSSH. It
    # makes the target absolute (from its working directory) but sends the link's path as given.
    await s.symlink("target.txt", "/as/link")
    out["readlink"] = await s.readlink("link")
    out["islink"] = await s.islink("link")
    async with s.open("link", "r") as f:
        out["throughLink"] = await f.read()
    out["targetIsLink"] = await s.islink("target.txt")
    await s.link("target.txt", "hard")  # hardlink@openssh.com
    out["hardSize"] = (await s.stat("hard")).size
    async with s.open("other.txt", "w") as f:
        await f.write("other\n")
    await s.posix_rename("other.txt", "hard")
    await s.rename("deep/er", "deep/renamed")
    out["glob"] = sorted(await s.glob("/as/*"))
    out["statvfs"] = (await s.statvfs(".")).bsize > 0
    await s.rmtree("deep")
    out["deepGone"] = not await s.exists("deep")
    out["entries"] = sorted(await s.listdir("."))
    return out


async def errors(s, work):
    await s.mkdir("/ae")
    async with s.open("/ae/file", "w") as f:
        await f.write("kept\n")
    out = {
        "removeMissing": await failure(s.remove("/ae/nope")),
        "statMissing": await failure(s.stat("/ae/nope")),
        "openInMissingDir": await failure(s.open("/ae/nodir/x", "w")),
        "mkdirExisting": await failure(s.mkdir("/ae")),
        "rmdirNotEmpty": await failure(s.rmdir("/ae")),
        "symlinkOverFile": await failure(s.symlink("x", "/ae/file")),
    }
    async with s.open("/ae/file", "r") as f:
        out["stillThere"] = await f.read()
    return out


SCENARIOS = {"login": login, "transfer": transfer, "edit": edit, "names": names, "errors": errors}


async def main():
    scenario, cfg = sys.argv[1], json.loads(sys.argv[2])
    auth = {"client_keys": [cfg["keyFile"]]} if cfg.get("keyFile") else {"password": cfg["password"], "client_keys": None}
    async with asyncssh.connect(
        "127.0.0.1", cfg["port"], username=cfg["user"], known_hosts=None, agent_path=None, **auth
    ) as conn:
        async with conn.start_sftp_client() as s:
            print(json.dumps(await SCENARIOS[scenario](s, cfg["work"])))


if __name__ == "__main__":
    asyncio.run(main())
