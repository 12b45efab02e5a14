"""The FastAPI app test_peer_uvicorn.py serves with uvicorn in a subprocess
(``uvicorn --app-dir tests/peers fastapi_app:app``).

The lifespan writes ``startup <loop class>`` and ``shutdown`` lines to the file named
by $RINGLOOP_PEER_MARKER, so the test can tell that start-up and a graceful
shutdown both ran, and on which loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel


def _loop_name() -> str:
    cls = type(asyncio.get_running_loop())
    return f"{cls.__module__}.{cls.__qualname__}"


def _mark(line: str) -> None:
    path = os.environ.get("RINGLOOP_PEER_MARKER")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


@contextlib.asynccontextmanager
async def lifespan(app):
    _mark(f"startup {_loop_name()}")
    yield
    _mark("shutdown")


app = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    values: list[int]


@app.get("/info")
async def info():
    return {"loop": _loop_name(), "pid": os.getpid()}


@app.post("/items")
async def create_item(item: Item):
    return {"name": item.name, "count": len(item.values), "sum": sum(item.values)}


@app.post("/upload")
async def upload(request: Request):
    h = hashlib.sha256()
    size = 0
    async for chunk in request.stream():
        h.update(chunk)
        size += len(chunk)
    return {"size": size, "sha256": h.hexdigest()}


@app.get("/stream")
async def stream(n: int = 100, size: int = 1000):
    async def chunks():
        for i in range(n):
            yield f"{i:08d}".encode() + b"." * (size - 8)
            await asyncio.sleep(0)

    return StreamingResponse(chunks(), media_type="application/octet-stream")
