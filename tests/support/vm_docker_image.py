"""A docker image tarball built by the test (issue 26): the booted workers load it with
``docker load`` (they reach no registry), so the master's example docker job finds its image.

    image_tarball(folder / "debian-stable-slim.tar", "debian:stable-slim")

The image is one layer of Debian 13 files taken from the provisioned root the real-pool tests
use (``ELASTIQ_CI_ROOT``): ``cat``, ``sh``, the shared libraries they load and ``/etc/os-release``
-- what the example job (``/bin/cat /etc/os-release``) needs, not a whole Debian.  The tarball
is in ``docker save``'s layout (``manifest.json``, the config, the layer).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

from tests.support.condor_daemons import ROOT

#: Files of the image, relative to the root (their symlinked directories kept as symlinks).
FILES = ("usr/bin/cat", "usr/bin/dash", "usr/lib/os-release",
         "usr/lib/x86_64-linux-gnu/libc.so.6", "usr/lib64/ld-linux-x86-64.so.2",
         "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
LINKS = {"bin": "usr/bin", "lib": "usr/lib", "lib64": "usr/lib64", "usr/bin/sh": "dash",
         "etc/os-release": "../usr/lib/os-release"}
DIRECTORIES = ("etc", "tmp", "usr", "usr/bin", "usr/lib", "usr/lib/x86_64-linux-gnu",
               "usr/lib64")


def image_tarball(path: Path, name: str, root: str = ROOT) -> Path:
    """Writes the image ``name`` (``repository:tag``) to ``path``; returns ``path``."""
    layer = _layer(Path(root))
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "elastiq tests: Debian 13 files for the example job"}],
    }, sort_keys=True).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = diff_id.split(":")[1] + "/layer.tar"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [name],
                            "Layers": [layer_name]}]).encode()
    with tarfile.open(path, "w") as tar:
        for member, data in ((config_name, config), (layer_name, layer),
                             ("manifest.json", manifest)):
            _add_bytes(tar, member, data)
    return path


def _layer(root: Path) -> bytes:
    missing = [f for f in FILES if not (root / f).exists()]
    if missing:
        raise FileNotFoundError(f"{root} lacks {', '.join(missing)} (the provisioned Debian 13 "
                                "root, ELASTIQ_CI_ROOT)")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in DIRECTORIES:
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        for link, target in LINKS.items():
            info = tarfile.TarInfo(link)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        for name in FILES:  # a symlinked file goes in as a copy
            info = tarfile.TarInfo(name)
            data = (root / name).read_bytes()
            info.size, info.mode = len(data), os.stat(root / name).st_mode & 0o777
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    parent = name.rsplit("/", 1)[0] if "/" in name else None
    if parent and parent not in tar.getnames():
        info = tarfile.TarInfo(parent)
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))
