"""The smtp channel: smtplib, STARTTLS, optional AUTH, any server.

Failures before the DATA command certainly delivered nothing and may be retried; a
connection lost while the message is being handed over leaves the outcome unknown.
"""

from __future__ import annotations

import smtplib
import ssl

from blippsync.channels import EMAIL, Delivery, DeliveryFailed, DeliveryUnknown, Message
from blippsync.channels.email import build_email, real_address, sender
from blippsync.config import Config
from blippsync.redaction import register_secret


class SmtpChannel:
    name = "smtp"
    kinds = frozenset({EMAIL})

    def send(self, message: Message, config: Config) -> Delivery:
        host, port = config["smtp.host"], config["smtp.port"]
        where = f"SMTP {host}:{port}"
        problem = real_address(sender(message, config))
        if problem:
            raise DeliveryFailed(f"smtp: no real From address: {problem} (set smtp.from_address "
                                 "or the business's email_from_address)", retryable=False)
        email = build_email(message, config)
        try:
            server = smtplib.SMTP(host, port, timeout=config["smtp.timeout_seconds"])
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"{where}: cannot connect: {exc}", retryable=True) from None
        with server:
            try:
                server.ehlo()
                if config["smtp.starttls"]:
                    server.starttls(context=ssl.create_default_context())
                    server.ehlo()
                if config["smtp.username"]:
                    register_secret(config["smtp.password"])
                    server.login(config["smtp.username"], config["smtp.password"])
            except smtplib.SMTPAuthenticationError as exc:
                raise DeliveryFailed(f"{where}: login refused ({exc.smtp_code})",
                                     retryable=False) from None
            except (OSError, smtplib.SMTPException) as exc:
                raise DeliveryFailed(f"{where}: {exc}", retryable=True) from None
            try:
                server.send_message(email)
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _ in exc.recipients.values()]
                raise DeliveryFailed(f"{where}: recipient refused {codes}",
                                     retryable=all(400 <= c < 500 for c in codes)) from None
            except smtplib.SMTPResponseException as exc:
                raise DeliveryFailed(f"{where}: {exc.smtp_code} {exc.smtp_error!r}",
                                     retryable=400 <= exc.smtp_code < 500) from None
            except (OSError, smtplib.SMTPException) as exc:
                raise DeliveryUnknown(f"{where}: connection lost during delivery: {exc}") from None
        return Delivery(provider_id=email["Message-ID"], details={"server": where})
