"""What ecm writes: the master user-data file (0600, atomically) and what it says then."""
from __future__ import annotations

import os
import shlex
import time
from typing import Optional

from . import render
from .source import Staged


def write_private(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically: a temporary file in the same
    directory renamed into place, removed if anything (Ctrl-C included) interrupts."""
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(at))


def staged_message(staged: Staged, endpoint) -> str:
    """What was put in the user's cloud (said on a terminal too, once the spinner is gone)."""
    store = endpoint.s3_url or "AWS S3"
    lines = [f"Created the private bucket {staged.bucket} in {store}."] if staged.bucket_created \
        else []
    lines.append(f"Uploaded {staged.wheel.path.name} ({staged.size // 1024} KiB, sha256 "
                 f"{staged.wheel.sha256[:16]}...) to {store}: bucket {staged.bucket}, key "
                 f"{staged.key}.  Remove it when the cluster is gone.")
    return "\n".join(lines)


def final_message(output: str, a: render.Answers, user_data: render.UserData,
                  image_name: str, staged: Optional[Staged] = None) -> str:
    size = f"{len(user_data.data)} bytes" + (
        f", gzip-compressed from {user_data.text_size}" if user_data.compressed else "")
    key = f" --key-name {shlex.quote(a.key_name)}" if a.key_name else ""
    lines = [
        f"Wrote {output} ({size}, mode 0600).",
        "Boot the master of the cluster with it as user-data, on the same image, e.g.:",
        f"  openstack server create --image {shlex.quote(image_name or a.image_id)} "
        f"--flavor <master flavour>{key} "
        f"--security-group <master group> --user-data {output} {a.cluster_name}-master",
        f"  aws ec2 run-instances --image-id {a.image_id} --instance-type <type>{key} "
        f"--user-data fileb://{output}" + ("" if a.embeds_credentials
                                          else " --iam-instance-profile Name=<profile>"),
        "The master's security group must let the workers reach TCP port 9618.  The master "
        "then starts the workers by itself; log in to it and read ~/README.txt.",
    ]
    if a.cloud != "ec2":  # the EC2 command line is for EC2 only
        del lines[3]
    if staged is not None:
        lines.append(f"Boot the master before {_when(staged.expires_at)}: it installs elastiq "
                     "from a presigned URL of the staged wheel, valid 7 days; after that, run "
                     "ecm again for a new one.")
    if user_data.compressed:
        lines.append("The file is gzip-compressed (cloud-init unpacks it): upload it as a "
                     "file, never paste it.")
    return "\n".join(lines)
