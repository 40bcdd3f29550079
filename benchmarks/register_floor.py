#!/usr/bin/env python3
"""The Python floor for register_vs_sipp.py's work: what any Python program pays.

Not a qsipctl feature and not a fair SIP client: it loads the same site file
with PyYAML's C loader (no validation, no templating, no line marks), then
runs the same exchange per account as SIPp and qsipctl --bind (REGISTER / 401
/ REGISTER with auth / 200, then the same for Expires: 0), 100 accounts at
once over ONE asyncio UDP socket, with f-string requests and only what the
exchange needs read from the answers (status code, Call-ID, nonce, realm) by
regular expressions.  No retransmissions, no strict parsing, no transaction
layer, no verdicts, no output beyond a count.  It exists to show how much of
qsipctl's time any CPython program doing this work on this machine would
spend anyway (interpreter start-up, asyncio, the syscalls, MD5).

    register_floor.py SITE.yml HOST PORT      (passwords from BENCH_PW_<user>)
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sys

import yaml

STATUS = re.compile(rb"^SIP/2\.0 (\d{3})")
CALL_ID = re.compile(rb"\r\nCall-ID:\s*([^\r]+)", re.I)
NONCE = re.compile(rb'nonce="([^"]+)"')
REALM = re.compile(rb'realm="([^"]+)"')


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class Client(asyncio.DatagramProtocol):
    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.waiting: dict[bytes, asyncio.Future[bytes]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]
        self.local = transport.get_extra_info("sockname")

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        m = CALL_ID.search(data)
        fut = self.waiting.pop(m.group(1).strip(), None) if m else None
        if fut is not None and not fut.done():
            fut.set_result(data)

    async def send(self, call_id: str, text: str) -> bytes:
        fut = asyncio.get_running_loop().create_future()
        self.waiting[call_id.encode()] = fut
        self.transport.sendto(text.encode(), self.server)
        return await asyncio.wait_for(fut, 5.0)


async def account(client: Client, user: str, password: str) -> None:
    host, port = client.server
    lhost, lport = client.local[:2]
    call_id, tag = os.urandom(12).hex(), os.urandom(6).hex()
    uri = f"sip:{host}:{port}"
    for cseq, expires in ((1, 3600), (3, 0)):
        auth = ""
        for step in range(2):
            text = (
                f"REGISTER {uri} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {lhost}:{lport};branch=z9hG4bK{os.urandom(10).hex()};rport\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:{user}@{host}>;tag={tag}\r\n"
                f"To: <sip:{user}@{host}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq + step} REGISTER\r\n"
                f"Contact: <sip:{user}@{lhost}:{lport}>\r\nExpires: {expires}\r\n"
                f"{auth}Content-Length: 0\r\n\r\n"
            )
            answer = await client.send(call_id, text)
            status = int(STATUS.match(answer).group(1))  # type: ignore[union-attr]
            if status == 200:
                break
            nonce = NONCE.search(answer).group(1).decode()  # type: ignore[union-attr]
            realm = REALM.search(answer).group(1).decode()  # type: ignore[union-attr]
            cnonce = os.urandom(8).hex()
            ha1 = md5(f"{user}:{realm}:{password}")
            response = md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{md5(f'REGISTER:{uri}')}")
            auth = (
                f'Authorization: Digest username="{user}", realm="{realm}", nonce="{nonce}",'
                f' uri="{uri}", response="{response}", algorithm=MD5, qop=auth,'
                f' nc=00000001, cnonce="{cnonce}"\r\n'
            )
        else:
            raise SystemExit(f"{user}: not accepted")


async def run(users: list[str], host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_datagram_endpoint(
        lambda: Client((host, port)), local_addr=("127.0.0.1", 0)
    )
    gate = asyncio.Semaphore(100)

    async def one(user: str) -> None:
        async with gate:
            await account(client, user, os.environ[f"BENCH_PW_{user}"])

    await asyncio.gather(*(one(u) for u in users))
    client.transport.close()


def main() -> None:
    site, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(site, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=yaml.CSafeLoader)
    users = [
        str(phone["username"])
        for core in doc["all"]["hosts"].values()
        for phone in core["softphones"]
    ]
    asyncio.run(run(users, host, port))
    print(len(users))


if __name__ == "__main__":
    main()
