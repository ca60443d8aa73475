"""The operating systems ecm can build a cluster on, and how to recognise their images.

Adding one: a line in :data:`OPERATING_SYSTEMS` and a worker template ``slave_files/<id>.sh.j2``
(HTCondor must publish packages for it in the chosen series, or the OS's own archive must hold
HTCondor: ``htcondor_source="os"``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Tuple


@dataclass(frozen=True)
class OperatingSystem:
    id: str
    label: str
    family: str          # "el" (dnf) or "deb" (apt)
    repo_dir: str        # HTCondor repository: "el9", or "ubuntu"/"debian" for apt
    codename: str        # apt suite ("" for el)
    default_user: str    # cloud image's default login, used when uid 1000 does not exist
    image_pattern: str   # regular expression matched (case-insensitively) against image names
    #: Where HTCondor comes from: "htcondor" (the HTCondor project's repository, in the chosen
    #: series) or "os" (the OS's own archive, in its version: no third-party repository).
    htcondor_source: str = "htcondor"
    #: (batch system, what of it the OS's own archive installs), shown after the label.
    from_archive: Tuple[Tuple[str, str], ...] = ()

    def matches(self, image_name: str) -> bool:
        return re.search(self.image_pattern, image_name or "", re.IGNORECASE) is not None

    def label_for(self, batch: str) -> str:
        """The label, and the batch system's version where the OS's own archive fixes it."""
        version = dict(self.from_archive).get(batch)
        return f"{self.label}, {version}" if version else self.label


OPERATING_SYSTEMS: Dict[str, OperatingSystem] = {
    os_.id: os_
    for os_ in (
        OperatingSystem("almalinux9", "AlmaLinux 9", "el", "el9", "", "almalinux",
                        r"alma\s*-?linux\D*9(\D|$)"),
        OperatingSystem("rocky9", "Rocky Linux 9", "el", "el9", "", "rocky",
                        r"rocky\D*9(\D|$)"),
        OperatingSystem("ubuntu2204", "Ubuntu 22.04 LTS (jammy)", "deb", "ubuntu", "jammy",
                        "ubuntu", r"ubuntu.*(22\.04|jammy)"),
        OperatingSystem("ubuntu2404", "Ubuntu 24.04 LTS (noble)", "deb", "ubuntu", "noble",
                        "ubuntu", r"ubuntu.*(24\.04|noble)"),
        OperatingSystem("debian12", "Debian 12 (bookworm)", "deb", "debian", "bookworm",
                        "debian", r"debian\D*12(\D|$)|bookworm"),
        OperatingSystem("debian13", "Debian 13 (trixie)", "deb",
                        "debian", "trixie", "debian", r"debian\D*13(\D|$)|trixie",
                        htcondor_source="os",
                        from_archive=(("htcondor", "HTCondor 23.9 from Debian"),
                                      ("slurm", "Slurm 24.11 from Debian"))),
    )
}


def matching_images(os_id: str, images: Iterable[Tuple[str, str]]) -> List[Tuple[str, str]]:
    """``(image_id, name)`` pairs whose name looks like ``os_id``, in the given order."""
    wanted = OPERATING_SYSTEMS[os_id]
    return [(image_id, name) for image_id, name in images if wanted.matches(name)]
