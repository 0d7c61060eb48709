"""Retryable writes (pymongo): a write resent with its session's txnNumber runs once.

Drivers resend a write after a network error with the same `lsid` and `txnNumber`; the server
must answer with the first execution's reply instead of writing twice. One test drops a
reply on the wire (a TCP proxy between pymongo and the cluster) so that pymongo's own retry
logic resends; the other sends the same raw commands twice.
"""

from __future__ import annotations

import socket
import struct
import threading
from urllib.parse import urlparse

import pymongo
import pytest
from bson import Int64


def read_message(sock: socket.socket) -> bytes | None:
    header = b""
    while len(header) < 4:
        chunk = sock.recv(4 - len(header))
        if not chunk:
            return None
        header += chunk
    (length,) = struct.unpack("<i", header)
    body = header
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    return body


class DropOneReply:
    """Forwards connections to the cluster; the first reply to a message carrying
    `txnNumber` is swallowed and that connection closed, as a network failure would."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.armed = True
        self.dropped = 0
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.relay, args=(conn,), daemon=True).start()

    def relay(self, conn: socket.socket) -> None:
        with conn, socket.create_connection(self.upstream) as up:
            while (request := read_message(conn)) is not None:
                up.sendall(request)
                reply = read_message(up)
                if reply is None:
                    return
                if self.armed and b"txnNumber" in request:
                    self.armed = False
                    self.dropped += 1
                    return  # the server wrote and replied; the client never hears it
                conn.sendall(reply)

    def close(self) -> None:
        self.listener.close()


def test_pymongo_retry_after_a_lost_reply_writes_once(mongo_uri, scratch_db):
    parsed = urlparse(mongo_uri)
    proxy = DropOneReply((parsed.hostname, parsed.port))
    try:
        through = pymongo.MongoClient(f"mongodb://127.0.0.1:{proxy.port}/?directConnection=true", serverSelectionTimeoutMS=5000)
        coll = through[scratch_db.name].c
        coll.insert_one({"_id": 1, "n": 0})  # carries a txnNumber: its reply is the one lost
        assert proxy.dropped == 1
        proxy.armed = True
        assert coll.update_one({"_id": 1}, {"$inc": {"n": 1}}).modified_count == 1
        proxy.armed = True
        after = coll.find_one_and_update({"_id": 1}, {"$inc": {"n": 10}}, return_document=pymongo.ReturnDocument.AFTER)
        assert proxy.dropped == 3
        # Each write ran once although each was sent twice.
        assert after == {"_id": 1, "n": 11}
        assert list(scratch_db.c.find()) == [{"_id": 1, "n": 11}]
        through.close()
    finally:
        proxy.close()


def test_resent_raw_writes_answer_their_first_reply(mongo_client, scratch_db):
    # Explicit sessions: pymongo puts their lsid on each command; the txnNumber is ours.
    session, other = mongo_client.start_session(), mongo_client.start_session()

    def send(txn: int, command: dict, on=session) -> dict:
        return scratch_db.command({**command, "txnNumber": Int64(txn)}, session=on)

    first = send(1, {"insert": "c", "documents": [{"_id": 1, "n": 0}]})
    assert send(1, {"insert": "c", "documents": [{"_id": 1, "n": 0}]}) == first == {"n": 1, "ok": 1.0}
    update = {"update": "c", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}}]}
    assert send(2, update) == send(2, update)
    modify = {"findAndModify": "c", "query": {"_id": 1}, "update": {"$inc": {"n": 5}}, "new": True}
    assert send(3, modify)["value"] == send(3, modify)["value"] == {"_id": 1, "n": 6}
    assert scratch_db.c.find_one() == {"_id": 1, "n": 6}
    # An older txnNumber is refused; a newer one writes again; another session is separate.
    with pytest.raises(pymongo.errors.OperationFailure) as err:
        send(2, update)
    assert err.value.code == 225
    send(4, update)
    send(2, update, on=other)
    assert scratch_db.c.find_one() == {"_id": 1, "n": 8}
    # A failed attempt (a command error, nothing written) runs again when resent.
    bad = {"update": "c", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}, "bogus": 1}]}
    with pytest.raises(pymongo.errors.OperationFailure):
        send(5, bad)
    send(5, update)
    assert scratch_db.c.find_one() == {"_id": 1, "n": 9}
    session.end_session()
    other.end_session()
