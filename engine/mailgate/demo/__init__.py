"""An in-memory IMAP4rev1 / POP3 / SMTP server: the backend of ``mailgate demo``.

Messages live in a :class:`Mailstore` (users, passwords, mailboxes, messages as
exact bytes); a :class:`DemoMailServer` serves one store over the three protocols
on any running asyncio loop.  It is small but real enough for Python's imaplib,
poplib and smtplib, curl and Thunderbird-like clients, so embedders can use it in
their own tests::

    from mailgate.demo import DemoMailServer, Mailstore

    store = Mailstore()
    store.add_user("alice", "wonderland")
    store.deliver("alice", b"Subject: hello\\r\\n\\r\\nHi Alice!\\r\\n")

    async with DemoMailServer(store, host="127.0.0.1") as server:
        imap_port = server.ports["imap"]        # also "pop3" and "smtp"
        ...
    store.messages("alice")                     # what SMTP delivered, byte for byte

The protocol sessions (:class:`ImapSession`, :class:`Pop3Session`,
:class:`SmtpSession`) are sans-I/O: bytes in, bytes out.
"""

from mailgate.demo._session import Limits
from mailgate.demo.imap import ImapSession
from mailgate.demo.pop3 import Pop3Session
from mailgate.demo.server import DemoMailServer
from mailgate.demo.smtp import SmtpSession
from mailgate.demo.store import INBOX, Mailbox, Mailstore, Message, UnknownMailbox, UnknownUser

__all__ = [
    "INBOX",
    "DemoMailServer",
    "ImapSession",
    "Limits",
    "Mailbox",
    "Mailstore",
    "Message",
    "Pop3Session",
    "SmtpSession",
    "UnknownMailbox",
    "UnknownUser",
]
