"""The Mailstore: users, recipients, mailboxes, flags, thread safety."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from mailgate.demo import INBOX, Mailstore, UnknownMailbox, UnknownUser


def test_users_and_passwords():
    store = Mailstore()
    store.add_user("alice", "wonder land")
    store.add_user("bob", b"\xffbytes")
    assert store.users() == ["alice", "bob"]
    assert store.check_password("alice", "wonder land")
    assert store.check_password(b"alice", b"wonder land")
    assert not store.check_password("alice", "wonder")
    assert not store.check_password("nobody", "wonder land")
    assert not store.check_password(b"\xff", b"x")
    assert store.check_password("bob", b"\xffbytes")
    with pytest.raises(ValueError, match="already exists"):
        store.add_user("alice", "again")
    for bad in ("", "a\r\nb", "nul\0"):
        with pytest.raises(ValueError):
            store.add_user(bad, "x")
    # no password in any repr
    assert "wonder" not in repr(store) and "wonder" not in repr(store._users)


def test_recipients():
    store = Mailstore()
    store.add_user("alice", "x")
    store.add_user("bob", "y", addresses=["Bob@Example.com"])
    store.add_user("carol@example.net", "z")
    assert store.recipient("Carol@example.net") == "carol@example.net"
    assert store.recipient("carol@elsewhere.example") is None
    assert store.recipient("alice@anywhere.example") == "alice"
    assert store.recipient("ALICE@localhost") == "alice"
    assert store.recipient("bob@example.COM") == "bob"
    assert store.recipient("bob@elsewhere.example") is None
    assert store.recipient("carol@example.com") is None
    assert store.recipient("alice") == "alice"


def test_mailboxes_and_messages():
    store = Mailstore()
    store.add_user("alice", "x")
    assert store.mailbox_names("alice") == [INBOX]
    assert store.mailbox("alice", "inbox") is store.mailbox("alice")
    sent = store.add_mailbox("alice", "Sent")
    assert store.add_mailbox("alice", "Sent") is sent
    assert store.mailbox_names("alice") == [INBOX, "Sent"]
    assert sent.uidvalidity != store.mailbox("alice").uidvalidity
    with pytest.raises(ValueError):
        store.add_mailbox("alice", "bad*name")
    with pytest.raises(UnknownMailbox):
        store.mailbox("alice", "sent")            # only INBOX is case-insensitive
    with pytest.raises(UnknownUser):
        store.deliver("nobody", b"x")
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert store.deliver("alice", b"one", flags=["\\SEEN", "$x", "\\Recent"]) == 1
    assert store.deliver("alice", b"two", internal_date=when) == 2
    assert store.messages("alice") == [b"one", b"two"]
    assert store.flags("alice") == {1: {"\\Seen", "$x"}, 2: frozenset()}
    box = store.mailbox("alice")
    assert box.status() == {"MESSAGES": 2, "RECENT": 2, "UIDNEXT": 3,
                            "UIDVALIDITY": box.uidvalidity, "UNSEEN": 1}
    with pytest.raises(TypeError):
        store.deliver("alice", "text")
    with pytest.raises(ValueError):
        store.deliver("alice", b"x", internal_date=dt.datetime(2024, 1, 1))
    first = box.snapshot()[0]
    assert repr(first) == "Message(uid=1, 3 bytes, flags=['$x', '\\\\Seen'])"
    assert box.update_flags(first, "remove", ["\\Seen"]) == {"$x"}
    with pytest.raises(ValueError):
        box.update_flags(first, "toggle", [])
    box.update_flags(first, "set", ["\\Deleted"])
    assert [m.uid for m in box.expunge([2])] == []
    assert [m.uid for m in box.expunge()] == [1]
    assert box.remove([2, 99]) == 1 and store.messages("alice") == []
    assert store.deliver("alice", b"three") == 3          # UIDs are never reused
    store.subscribe("alice", "Sent", on=False)
    assert store.subscriptions("alice") == {INBOX}


def test_concurrent_delivery_from_threads():
    store = Mailstore()
    store.add_user("alice", "x")
    box = store.mailbox("alice")

    def deliver(n):
        for i in range(200):
            uid = store.deliver("alice", b"%d-%d" % (n, i))
            box.update_flags(box.snapshot()[-1], "add", ["\\Seen"])
            assert uid > 0

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    messages = box.snapshot()
    assert [m.uid for m in messages] == list(range(1, 801))
    assert len({m.data for m in messages}) == 800
