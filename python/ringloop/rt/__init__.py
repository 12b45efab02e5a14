"""ringloop.rt: the Tokio-style runtime (placeholder until the rtpy branch's
__init__ is merged; it imports these same names)."""

from ._blocking import spawn_blocking, to_thread
from ._dns import resolve
from . import fs
