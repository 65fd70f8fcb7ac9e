"""A real `margay agent` process for tests (margay.rig.children)."""

from ..rig.children import AgentProcess, read_all

__all__ = ["AgentProcess", "read_all"]
