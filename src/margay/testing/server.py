"""A real margay server for tests: in a thread (margay.serving), or as a separate process (margay.rig)."""

from ..rig.children import ChildProcess, ServerProcess
from ..serving import ServerThread, bind, url_of

__all__ = ["ChildProcess", "ServerProcess", "ServerThread", "bind", "url_of"]
