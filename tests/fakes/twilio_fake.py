"""A loopback Twilio Messages API: the REST shapes of POST .../Messages.json (201 with a
message resource; 400 with Twilio's error body for numbers it is told to refuse)."""

from __future__ import annotations

import base64
import uuid
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from blippsync.http import HttpServer


class FakeTwilio:
    def __init__(self, sid: str, token: str) -> None:
        self.sid, self.token = sid, token
        self.forms: list[dict[str, str]] = []
        self.refuse: dict[str, tuple[int, str]] = {}  # To -> (error code, message)
        app = Starlette(routes=[Route("/2010-04-01/Accounts/{sid}/Messages.json", self._create,
                                      methods=["POST"])])
        self.server = HttpServer(app, "127.0.0.1", 0)

    def __enter__(self) -> FakeTwilio:
        self.server.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def _create(self, request: Request) -> JSONResponse:
        expected = "Basic " + base64.b64encode(f"{self.sid}:{self.token}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return JSONResponse({"code": 20003, "message": "Authenticate", "status": 401}, 401)
        form = dict(parse_qsl((await request.body()).decode()))
        if form["To"] in self.refuse:
            code, message = self.refuse[form["To"]]
            return JSONResponse({"code": code, "message": message, "status": 400,
                                 "more_info": f"https://www.twilio.com/docs/errors/{code}"}, 400)
        self.forms.append(form)
        sid = "SM" + uuid.uuid4().hex
        return JSONResponse({"sid": sid, "account_sid": self.sid, "to": form["To"],
                             "from": form.get("From"), "body": form["Body"], "status": "queued",
                             "num_segments": "1", "error_code": None, "error_message": None,
                             "uri": f"/2010-04-01/Accounts/{self.sid}/Messages/{sid}.json"},
                            201)
