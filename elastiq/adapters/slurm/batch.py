"""Slurm batch adapter: the queue from ``squeue --json``, our workers (dynamic nodes) from
``scontrol show node --json``, drains with ``scontrol update``, and the removal of the nodes
whose VMs are gone (``scontrol delete nodename=``).

The commands run through :class:`.cli.SlurmCommands` (errors translated there once);
the JSON is read by the pure :mod:`.jobs` and :mod:`.nodes`.  Errors: the
controller unreachable -> :class:`TransientError` (no observation); nothing else escapes as
anything but an :class:`AdapterError`.

A node is deleted from Slurm right after its VM's terminate (:meth:`SlurmBatch.forget`,
which the actuator calls), so slurmctld never schedules onto it nor lists it; a node left
over (the deletion failed, elastiq stopped in between) is deleted at the first pool read that
finds it gone (drained by us, idle, its slurmd not answering: see
:func:`.nodes.gone`), i.e. once slurmctld has marked it not responding (``SlurmdTimeout``).
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ...model import Catalogue, Pool, Queue, Worker
from . import jobs, nodes
from ..base import AdapterError
from ..told import TellOnce
from .cli import SlurmCommands

if TYPE_CHECKING:
    from ...config import Config

log = logging.getLogger(__name__)
NODE_GONE = "Invalid node name specified"


class SlurmBatch:
    """elastiq's view of a Slurm cluster (see :class:`~elastiq.adapters.base.BatchSystem`).

    ``commands``: what runs the Slurm clients (default :class:`SlurmCommands` of the
    ``slurm`` section); ``clock``: seconds since the epoch (a job's begin time is compared
    with it); ``catalogue``: the worker VMs' shape (default: the ``vm`` section's).
    """

    #: Its reads talk to its own commands and share nothing with the other port's adapter: the
    #: runtime lists the cloud while it reads the queue (:func:`base.reads_overlap`).
    independent_reads = True

    def __init__(self, config: Config, commands: Optional[SlurmCommands] = None,
                 clock: Callable[[], float] = time.time, catalogue: Optional[Catalogue] = None):
        settings = config.batch
        self._cluster = config.elastiq.cluster_name
        catalogue = catalogue or Catalogue.of(config.vm)
        self._shape = (catalogue.cpus, catalogue.memory_mb)
        self._partitions, self._features = settings.partitions, settings.features
        self._commands = commands or SlurmCommands(settings.bin_dir, settings.command_timeout_s)
        self._clock = clock
        self._told = TellOnce(log)

    def queue(self) -> Queue:
        data = self._commands.json(["squeue"])
        idle, running, running_on, notes = jobs.read_queue(
            data, self._shape, self._clock(), self._partitions, self._features)
        self._told.tell(notes)
        return Queue(idle=tuple(idle), running=running, running_on=running_on)

    def _nodes(self) -> Tuple[List[Worker], List[str], int]:
        data = self._commands.json(["scontrol", "show", "node"])
        jobs_on = jobs.jobs_per_node(self._commands.json(["squeue"]))
        return nodes.read_nodes(data, self._cluster, jobs_on)

    def pool(self, known_ips: Optional[Mapping[str, str]] = None) -> Pool:
        """Our nodes, by the features they registered with (``known_ips`` is not needed: a
        node that names no instance is never ours to touch).  Gone nodes are deleted."""
        workers, dead, malformed = self._nodes()
        for name in dead:
            self._delete(name)
        if malformed:
            log.warning("pool is partial: %d node entries without a name", malformed)
        return Pool(workers=tuple(workers), partial=malformed > 0)

    def _delete(self, name: str) -> None:
        try:
            self._commands.run(["scontrol", "delete", f"nodename={name}"], tolerate=(NODE_GONE,))
            log.info("node %s deleted from Slurm: its VM is gone", name)
        except AdapterError as err:  # tried again at the next pool read
            log.warning("cannot delete node %s (%s error): %s", name, err.kind, err)

    def forget(self, instance_ids: Sequence[str]) -> None:
        """Delete at once the nodes of ours of these instances (their VMs were terminated),
        rather than once slurmctld finds them not responding.  One read of the nodes, then one
        ``scontrol delete`` per node; a node Slurm refuses to delete (a job still on it) is
        left for the pool read's clean-up."""
        wanted = set(instance_ids)
        if not wanted:
            return
        data = self._commands.json(["scontrol", "show", "node"])
        for name in nodes.names_of(data, self._cluster, wanted):
            self._delete(name)

    def drain(self, worker: str, reason: str) -> None:
        """Drain ``worker`` (a node name): it takes no new job, running jobs finish.
        Idempotent (draining a drained node is no error in Slurm)."""
        self._commands.run(["scontrol", "update", f"nodename={worker}", "state=drain",
                            f"reason={nodes.DRAIN_PREFIX}{reason}"])
        log.debug("draining %s: %s", worker, reason)

    def cancel_drain(self, worker: str) -> None:
        """Undrain ``worker``: it takes jobs again.  Idempotent: a node that does not drain
        (Slurm refuses to resume it) is left as it is."""
        if self._commands.run(["scontrol", "update", f"nodename={worker}", "state=resume"],
                              tolerate=("Invalid node state specified",)) is None:
            log.info("%s already not draining", worker)

    def workers_of(self, instance_ids: Sequence[str],
                   known_ips: Optional[Mapping[str, str]] = None) -> Dict[str, Worker]:
        """Our workers of these instances, read from slurmctld now (see
        ``BatchSystem.workers_of``)."""
        wanted = set(instance_ids)
        if not wanted:
            return {}
        workers, _, _ = self._nodes()
        return {w.instance_id: w for w in workers if w.instance_id in wanted}
