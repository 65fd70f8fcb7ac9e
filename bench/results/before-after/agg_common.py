"""What agg_batch_cpu.py and agg_items_cpu.py share: a process's CPU seconds, the overview's aggregation items
and each log type's aggregation route (s12-ui)."""

import json
import os

ROUTES = {"flows": "flows/logs", "dns": "dns/logs", "audit": "audit/logs", "bgp": "bgp/logs", "l7": "l7/logs",
          "events": "events"}


def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def items(path=None):
    """The items of ITEMS.json (default: overview-batch-items.json beside this file)."""
    return json.load(open(path or os.path.join(os.path.dirname(__file__), "overview-batch-items.json")))["batch"]
