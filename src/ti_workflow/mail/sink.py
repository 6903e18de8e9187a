"""A local SMTP sink (aiosmtpd) for development and tests: ``ti-workflow smtp-sink``.

It accepts everything by default and records each message; ``reply`` makes it answer
every DATA with a given reply (e.g. ``451 try later`` or ``550 no``), ``refuse`` refuses
chosen recipients at RCPT: enough to exercise the dispatcher's retry rules for real.
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        return str(body.get_content()) if body is not None else ""


@dataclass
class RecordingHandler:
    reply: str | None = None
    refuse: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    on_message: Callable[[Received], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reply:
            return self.reply
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        got = Received(envelope.mail_from, list(envelope.rcpt_tos), message)
        with self.lock:
            self.received.append(got)
        if self.on_message:
            self.on_message(got)
        return "250 Message accepted for delivery"


def start_sink(host: str, port: int, handler: RecordingHandler) -> Controller:
    controller = Controller(handler, hostname=host, port=port)
    controller.start()
    return controller
