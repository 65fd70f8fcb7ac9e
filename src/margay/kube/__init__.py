"""Reading a Kubernetes cluster: list+watch of the resources compliance reports and Calico configuration need.

    resources.py   the kinds margay reads (Kubernetes and Calico) and where the API server serves them
    watch.py       ResourceWatcher: list, then watch, per kind; a thread-safe cache; snapshots (spec §12.2)
    files.py       the same snapshots from YAML files, for margay without an API server
"""

from .files import snapshot_from_files
from .resources import CALICO_CONFIG, COMPLIANCE, KINDS, Kind
from .watch import ResourceWatcher, Snapshot

__all__ = ["CALICO_CONFIG", "COMPLIANCE", "KINDS", "Kind", "ResourceWatcher", "Snapshot", "snapshot_from_files"]
