"""ringloop.rt.fs: async file I/O for any asyncio loop.

Each call is one C task on ringloop's C workers, whose steps are io_uring ops
on the worker's own ring (``read_file`` is openat, statx, reads, close) without
the GIL; the result crosses to the loop once.  ``copy`` (copy_file_range),
``stat`` (``os.stat`` itself, for an identical result) and everything when the
kernel refuses io_uring run in the blocking pool instead.  Works on any asyncio
loop.  Errors are the ``OSError``
subclasses, with ``errno`` and ``filename``, that ``open()``/``os.stat``
raise.  Cancelling the awaiting task never frees memory a job still uses, and
a file opened for a cancelled ``open`` is closed, not leaked.

    data = await fs.read_file(path)
    await fs.write_file(path, data)
    async with await fs.open(path, "rb") as f:
        head = await f.read(4096)

``File`` is binary only (text: ``read_text``/``write_text``).
"""

from __future__ import annotations

import asyncio
import os

from .. import _core
from ._blocking import sink_for, spawn_blocking

__all__ = (
    "File", "open", "read", "read_file", "read_text", "write_file", "write_text",
    "copy", "stat", "fsync",
)

_job = _core.fs_job
_FLAGS = {
    "r": os.O_RDONLY, "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND, "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
}


def _submit(op, path=None, path2=None, fd=-1, flags=0, mode=0, n=-1, data=None):
    loop = asyncio.get_running_loop()
    return _job(sink_for(loop), loop.create_future(), op, path, path2, fd, flags,
                mode, n, data)


def _open_flags(mode: str) -> int:
    if not isinstance(mode, str):
        raise TypeError(f"open() argument 'mode' must be str, not {type(mode).__name__}")
    kinds = set(mode)
    if len(kinds) != len(mode) or not kinds <= set("rwaxb+") or \
            len(kinds & set("rwax")) != 1:
        raise ValueError(f"invalid mode: '{mode}'")
    flags = _FLAGS[(kinds & set("rwax")).pop()]
    if "+" in kinds:
        flags = (flags & ~(os.O_RDONLY | os.O_WRONLY)) | os.O_RDWR
    return flags


class File:
    """An open file: async ``read``/``write``/``close``; ``seek``/``tell`` are
    immediate (they never block)."""

    __slots__ = ("_fd", "name", "mode", "__weakref__")

    def __init__(self, fd: int, name, mode: str):
        self._fd = fd
        self.name = name
        self.mode = mode

    def fileno(self) -> int:
        self._check()
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def _check(self):
        if self._fd < 0:
            raise ValueError("I/O operation on closed file.")

    async def read(self, n: int = -1) -> bytes:
        self._check()
        if n is None:
            n = -1
        return await _submit(_core.FS_READ, fd=self._fd, n=n)

    async def write(self, data) -> int:
        self._check()
        return await _submit(_core.FS_WRITE, fd=self._fd, data=data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._check()
        return os.lseek(self._fd, offset, whence)

    def tell(self) -> int:
        self._check()
        return os.lseek(self._fd, 0, os.SEEK_CUR)

    async def fsync(self, datasync: bool = False) -> None:
        self._check()
        await _submit(_core.FS_FSYNC, fd=self._fd, flags=int(bool(datasync)))

    async def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            await _submit(_core.FS_CLOSE, fd=fd)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    def __del__(self):
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __repr__(self):
        state = "closed" if self._fd < 0 else f"fd={self._fd}"
        return f"<ringloop.rt.fs.File name={self.name!r} mode={self.mode!r} {state}>"


async def open(path, mode: str = "rb", *, perms: int = 0o666) -> File:
    """Open `path` (binary modes as built-in ``open``: r, w, a, x, +, b)."""
    flags = _open_flags(mode)
    fut = _submit(_core.FS_OPEN, os.fspath(path), flags=flags, mode=perms)
    try:
        fd = await fut
    except asyncio.CancelledError:
        # Cancelled after the open succeeded but before this task resumed:
        # the fd is ours to close (a cancelled pending open is closed by C).
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            os.close(fut.result())
        raise
    return File(fd, path, mode)


async def read_file(path) -> bytes:
    """The whole file's contents."""
    return await _submit(_core.FS_READ_FILE, os.fspath(path))


read = read_file


async def read_text(path, encoding: str = "utf-8", errors: str = "strict") -> str:
    return (await read_file(path)).decode(encoding, errors)


async def write_file(path, data, *, append: bool = False) -> None:
    """Create or truncate `path` (or append to it) and write all of `data`."""
    flags = _FLAGS["a" if append else "w"]
    await _submit(_core.FS_WRITE_FILE, os.fspath(path), flags=flags, data=data)


async def write_text(path, text: str, encoding: str = "utf-8", errors: str = "strict") -> None:
    await write_file(path, text.encode(encoding, errors))


async def copy(src, dst) -> int:
    """Copy contents and permission bits of `src` to `dst`; the byte count."""
    return await _submit(_core.FS_COPY, os.fspath(src), os.fspath(dst))


async def stat(path, *, follow_symlinks: bool = True) -> os.stat_result:
    """``os.stat(path)`` off the loop (the same result object)."""
    return await spawn_blocking(os.stat, path, follow_symlinks=follow_symlinks)


async def fsync(file) -> None:
    """fsync an ``rt.fs.File`` or a file descriptor / object with fileno()."""
    if isinstance(file, File):
        return await file.fsync()
    fd = file if isinstance(file, int) else file.fileno()
    await _submit(_core.FS_FSYNC, fd=fd)
