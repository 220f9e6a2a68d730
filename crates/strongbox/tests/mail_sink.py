#!/usr/bin/env python3
"""A mail server for the tests (aiosmtpd): takes every message and appends it to a
file as one JSON line {"from", "to", "data", "auth"}. Prints `READY <port>` once it
listens.

    mail_sink.py --out FILE [--port N] [--mode plain|starttls|tls]
                 [--cert PEM --key PEM] [--auth USER:PASSWORD]

plain: no TLS. starttls: STARTTLS offered and required before MAIL. tls: TLS from
the first byte. With --auth, AUTH PLAIN/LOGIN is required (over TLS only) and
checked against USER:PASSWORD.
"""
import argparse
import json
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Sink:
    def __init__(self, out, implicit_tls):
        self.out = out
        self.implicit_tls = implicit_tls

    async def handle_DATA(self, server, session, envelope):
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "auth": getattr(session, "user", None),
            # Under implicit TLS the whole socket is TLS (aiosmtpd only marks STARTTLS).
            "tls": self.implicit_tls or session.ssl is not None,
        }
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 OK"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--mode", default="plain", choices=["plain", "starttls", "tls"])
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--auth")
    a = p.parse_args()

    kwargs = {}
    context = None
    if a.mode != "plain":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(a.cert, a.key)
    if a.mode == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    elif a.mode == "tls":
        kwargs.update(ssl_context=context)
    if a.auth:
        user, password = a.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login.decode() == user and auth_data.password.decode() == password
            if ok:
                session.user = user
            return AuthResult(success=ok, handled=False)

        # aiosmtpd counts only STARTTLS as TLS for AUTH; under implicit TLS it is TLS.
        kwargs.update(
            authenticator=authenticator, auth_required=True, auth_require_tls=a.mode == "starttls"
        )

    port = a.port
    if port == 0:
        import socket

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
    controller = Controller(Sink(a.out, a.mode == "tls"), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print(f"READY {port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    sys.exit(main())
