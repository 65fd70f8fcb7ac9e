"""margay agent: tails Calico's node-local logs (and the audit webhook, and EKS CloudWatch), spools, ships.

    settings.py    the settings table (flags, MARGAY_AGENT_* environment, config file)
    tail.py        one file: whole lines, rotation by rename and copy-truncate, restarts
    spool.py       the bounded, durable FIFO of batches between reading and shipping
    checkpoint.py  per-source positions, saved only after the server acknowledged a batch
    shipper.py     bulk requests, retries with backoff and jitter, what each answer means
    runner.py      the agent: sources -> spool -> sender threads
    http.py        status, /-/metrics and the audit webhook
    cloudwatch.py  EKS audit streams from CloudWatch Logs
    aggregation.py the --aggregate hook (margay.aggregate)
    bench.py       throughput and CPU cost, for the benchmark harness
"""

from __future__ import annotations

from typing import Any


def run_agent(flags: dict[str, Any], config: Any = None) -> None:
    """`margay agent`: load settings, run until SIGTERM/SIGINT."""
    import logging

    from .runner import Agent
    from .settings import AgentSettings

    settings = AgentSettings.load(flags, config=config)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise on a node
    agent = Agent(settings)
    agent.install_signal_handlers()
    logging.getLogger("margay.agent").info("agent %s (node %s, cluster %s) shipping to %s; sources: %s",
                                           agent.instance[:8], settings.node, settings.cluster, settings.server,
                                           ", ".join(agent.sources) or "none")
    agent.run()


def bench(**kwargs: Any) -> dict[str, Any]:
    """Measure the agent's throughput and CPU cost against a real server (see bench.py)."""
    from .bench import bench as _bench

    return _bench(**kwargs)


__all__ = ["run_agent", "bench"]
