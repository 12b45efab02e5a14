"""Subprocesses: subprocess_exec and subprocess_shell.

The argument checks (subprocess_exec / subprocess_shell), the transport
(``base_subprocess.BaseSubprocessTransport`` with ``unix_events.
_UnixSubprocessTransport._start``: Popen, then the pipes connected through
connect_read_pipe / connect_write_pipe) are asyncio's own, taken by
reference, so behaviour follows each Python version exactly.

What differs is how the child's exit is seen: no SIGCHLD handler and no
asyncio child watcher (deprecated in 3.12, removed in 3.14). Each child
gets a pidfd (``os.pidfd_open``), watched for readability with the loop's
readiness callbacks (csrc/py/fdwatch.c); when it becomes readable the
child has exited and ``os.waitid(P_PIDFD, WNOHANG)`` reaps exactly that
child, race-free against pid reuse. A child somebody else reaped gets
returncode 255 with asyncio's warning (or the status Popen itself
collected, when Popen.poll() was the one that reaped it).

Invariant: ``self._rl_children`` maps each watched pidfd to its transport;
the pidfd is closed when the exit is collected or when the loop closes.
A child still running when the loop closes is left to Popen (its
``__del__`` puts it on subprocess's list of processes to reap); one that
already exited is reaped then. Loop thread only.
"""

from __future__ import annotations

import logging
import os
from asyncio import base_events, unix_events

__all__ = ("SubprocessMixin",)

_Base = base_events.BaseEventLoop
logger = logging.getLogger("asyncio")


def _exit_code(info):
    """A waitid() result as a Popen-style returncode (negative: a signal)."""
    if info.si_code == os.CLD_EXITED:
        return info.si_status
    return -info.si_status  # CLD_KILLED / CLD_DUMPED


class SubprocessMixin:
    """subprocess_exec / subprocess_shell; mixed into EventLoop."""

    subprocess_exec = _Base.subprocess_exec
    subprocess_shell = _Base.subprocess_shell
    _log_subprocess = _Base._log_subprocess

    async def _make_subprocess_transport(self, protocol, args, shell,
                                         stdin, stdout, stderr, bufsize,
                                         extra=None, **kwargs):
        self._check_closed()
        waiter = self.create_future()
        transp = unix_events._UnixSubprocessTransport(
            self, protocol, args, shell, stdin, stdout, stderr, bufsize,
            waiter=waiter, extra=extra, **kwargs)
        try:
            self._rl_watch_child(transp)
        except BaseException:
            transp.close()  # kills the child; Popen reaps it later
            raise
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transp.close()
            await transp._wait()
            raise
        return transp

    def _rl_watch_child(self, transp):
        pidfd = os.pidfd_open(transp.get_pid())
        try:
            self._add_reader(pidfd, self._rl_child_ready, pidfd)
        except BaseException:
            os.close(pidfd)
            raise
        self._rl_children[pidfd] = transp

    def _rl_child_ready(self, pidfd):
        transp = self._rl_children[pidfd]
        try:
            info = os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
        except ChildProcessError:
            info = None
            returncode = transp._proc.returncode  # Popen.poll() reaped it
            if returncode is None:
                returncode = 255
                logger.warning(
                    "child process pid %d exit status already read: "
                    " will report returncode 255", transp.get_pid())
        else:
            if info is None:  # not exited after all: keep watching
                return
            returncode = _exit_code(info)
        del self._rl_children[pidfd]
        self._remove_reader(pidfd)
        os.close(pidfd)
        self.call_soon(transp._process_exited, returncode)

    def _close_core(self):
        try:
            super()._close_core()
        finally:
            children, self._rl_children = self._rl_children, {}
            for pidfd, transp in children.items():
                try:
                    info = os.waitid(os.P_PIDFD, pidfd,
                                     os.WEXITED | os.WNOHANG)
                except ChildProcessError:
                    info = None
                if info is not None and transp._proc.returncode is None:
                    transp._proc.returncode = _exit_code(info)
                os.close(pidfd)
