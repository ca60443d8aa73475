"""Which elastiq owns a VM: the owner id of one daemon installation, and the listing split by it.

A cluster's name is chosen by people (the example's ``elastiq``), so two clusters on one cloud
account may carry the same ``elastiq:cluster`` tag.  Every VM a daemon launches therefore also
carries its **owner id** (EC2 tag / Nova metadata ``elastiq:owner``): a random id made on the
daemon's first start and kept in ``<state_dir>/owner``.  Why so:

- random: unique by construction (``/etc/machine-id`` is not: images cloned with it set share
  it, and a cluster name's 4 random digits are the user's to change);
- a file of its own beside the state file, never rewritten: a state file that is lost, corrupt
  or moved aside leaves it, so the daemon still finds (adopts) and terminates its own VMs;
- text an operator can move: a master rebuilt without its state directory gets a new id and
  leaves the old VMs alone, naming their owner; writing that id into the file takes them over.

The split of a listing (:class:`Ownership`): instances with our owner id are ours; those with
another owner id belong to another live cluster of the same name and are never adopted,
terminated or counted toward ``max_vms`` (they are not ours to limit; the cloud's quota is
what they share); those with no owner id (launched by an elastiq older than owner ids, or by
hand) are ours only when the saved state knows them.  The others are left out of the
observation and logged once.
"""
from __future__ import annotations

import logging
import os
import re
import secrets
from typing import Callable, Collection, Dict, List, Optional, Set, Tuple

from ..config.text import InvalidConfig
from ..model import ALIVE_STATES, Instance

log = logging.getLogger(__name__)

FILE_NAME = "owner"
#: What an owner id may be: a tag / metadata value on every cloud (EC2: 256 characters,
#: Nova: 255), readable in a log line.
VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")


def path_in(state_dir: str) -> str:
    return os.path.join(state_dir, FILE_NAME)


def read(state_dir: str) -> Optional[str]:
    """The owner id kept in ``state_dir``; None when there is none yet.  InvalidConfig naming
    the file when it holds something else (never replaced: the VMs carrying the id it had
    would be left alone)."""
    path = path_in(state_dir)
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(200).strip()
    except FileNotFoundError:
        return None
    if not VALID.match(text):
        raise InvalidConfig(path, None, "not an owner id (letters, digits, '.', '_', '-'; at "
                            "most 64): restore the file from a backup, or, if the VMs it "
                            "named are gone, delete it (a new id is made)")
    return text


def load_or_create(state_dir: str) -> str:
    """The owner id kept in ``state_dir``, made (random, 16 hex digits) and kept if there is
    none.  Two daemons starting at once in one directory agree: the file is put in place
    atomically and never overwritten."""
    found = read(state_dir)
    if found is not None:
        return found
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    made = secrets.token_hex(8)
    temporary = f"{path_in(state_dir)}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(made + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temporary, path_in(state_dir))  # fails if another one was put there meanwhile
    except FileExistsError:
        made = read(state_dir) or made
    else:
        log.info("made this daemon's owner id %s (kept in %s): its VMs carry it", made,
                 path_in(state_dir))
    finally:
        os.unlink(temporary)
    return made


class Ownership:
    """Splits listings by owner for the daemon whose id is ``owner``; ``where`` names the file
    keeping it (for the operator's instructions)."""

    def __init__(self, owner: str, cluster: str, where: str = "the state directory"):
        self.owner, self.cluster, self.where = owner, cluster, where
        self._told_owners: Set[str] = set()  # logged already
        self._told_unowned: Set[str] = set()

    def ours(self, listing: Tuple[Instance, ...],
             known: Callable[[], Collection[str]]) -> Tuple[Instance, ...]:
        """The instances of ``listing`` that are ours: our owner id, or none and ``known()``
        (the instance ids the saved state holds; asked only when an instance has no owner)."""
        if all(i.owner == self.owner for i in listing):
            return listing
        others: Dict[str, List[str]] = {}
        unowned: List[str] = []
        kept = []
        saved: Optional[Collection[str]] = None
        for instance in listing:
            if instance.owner == self.owner:
                kept.append(instance)
            elif instance.owner is not None:
                others.setdefault(instance.owner, []).append(instance.id)
            else:
                saved = known() if saved is None else saved
                if instance.id in saved:
                    kept.append(instance)
                elif instance.state in ALIVE_STATES:
                    unowned.append(instance.id)
        self._tell(others, unowned)
        return tuple(kept)

    def _tell(self, others: Dict[str, List[str]], unowned: List[str]) -> None:
        for other, ids in sorted(others.items()):
            if other not in self._told_owners:
                self._told_owners.add(other)
                log.warning("%s", foreign_text(self.cluster, other, ids, self.owner, self.where))
        new = [i for i in unowned if i not in self._told_unowned]
        if new:
            self._told_unowned.update(new)
            log.warning("%s", unowned_text(self.cluster, new))


def foreign_text(cluster: str, other: str, ids: List[str], owner: Optional[str],
                 where: str) -> str:
    mine = f"this one's is {owner}" if owner else "this one has none yet"
    return (f"{len(ids)} instance(s) tagged elastiq:cluster={cluster} belong to another elastiq "
            f"(owner {other}; {mine}): {' '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}. "
            "They are not adopted, counted or terminated. Two clusters share this name: rename "
            "one (elastiq.cluster_name). If that elastiq is gone and they are this cluster's "
            f"(its state directory was lost), write {other} into {where} and restart")


def unowned_text(cluster: str, ids: List[str],
                 verdict: str = "are not in the saved state: left alone") -> str:
    return (f"{len(ids)} alive instance(s) tagged elastiq:cluster={cluster} carry no "
            f"elastiq:owner (an older elastiq's, or made by hand) and {verdict}; terminate "
            f"them by hand if nobody uses them: {' '.join(ids[:10])}"
            f"{' ...' if len(ids) > 10 else ''}")
