"""Sites without internet (issue 26, item 3): ``--apt-mirror`` replaces the image's apt sources
with the site's mirror of the OS archive (Debian and Ubuntu), ``--index-url`` becomes the pip
index of the master and the workers (/etc/pip.conf; a plain-http host trusted).  The units run
with bash on a directory of their own; apt and pip themselves read what they wrote."""
from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

from ecm import render
from ecm.oses import OPERATING_SYSTEMS
from tests.test_ecm_render import answers
from tests.test_ecm_wizard import (ecm_moto, embedded_config, master_text, run,  # noqa: F401
                                   workdir)

DEB = sorted(o for o, os_ in OPERATING_SYSTEMS.items() if os_.family == "deb")
MIRROR = "http://10.26.0.1:8080/debian"


def _values(script: str) -> dict:
    """The site values the script sets (APT_*, PIP_INDEX), as bash reads them."""
    out = subprocess.run(["bash", "-c", script.split("\n# --- end of")[0] + "\ndeclare -p"],
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}).stdout
    return {line.split("=", 1)[0].split()[-1]: line.split("=", 1)[1].strip('"')
            for line in out.splitlines() if line.startswith("declare -- ")
            and line.split()[2].split("=")[0] in ("APT_MIRROR", "APT_SUITE", "APT_COMPONENTS",
                                                  "PIP_INDEX")}


def _run_unit(script: str, name: str, **env) -> None:
    values = _values(script)
    subprocess.run(["bash", "-euc", render.units(script)[name]], check=True,
                   env={"PATH": "/usr/bin:/bin", **values, **env})


@pytest.mark.parametrize("role", ["master", "worker"])
@pytest.mark.parametrize("os_id", DEB)
def test_apt_mirror_replaces_the_image_sources_and_apt_fetches_from_it(tmp_path, os_id, role):
    a = answers(os_id, apt_mirror=MIRROR)
    script = render.render_master(a) if role == "master" else render.render_worker(a)
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list").write_text("deb http://deb.example.org/debian stable main\n")
    (apt / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb.example.org/debian\nSuites: stable\nComponents: main\n")
    _run_unit(script, "apt-mirror", APT_ETC=str(apt))
    assert sorted(p.name for p in apt.rglob("*") if p.is_file()) == [
        "debian.sources.elastiq-disabled", "elastiq-mirror.sources",
        "sources.list.elastiq-disabled"]
    codename = OPERATING_SYSTEMS[os_id].codename
    # apt itself: the only index files it would fetch are the mirror's, of the OS's suite.
    (tmp_path / "lists" / "partial").mkdir(parents=True)
    uris = subprocess.run(
        ["apt-get", "-o", f"Dir::Etc={apt}", "-o", f"Dir::State::Lists={tmp_path / 'lists'}",
         "-o", "Debug::NoLocking=1", "update", "--print-uris"],
        capture_output=True, text=True, check=True).stdout
    fetched = [line.split()[0].strip("'") for line in uris.splitlines() if line.startswith("'")]
    assert fetched and all(u.startswith(f"{MIRROR}/dists/{codename}/") for u in fetched), uris


@pytest.mark.parametrize("os_id", DEB)
def test_without_a_mirror_the_image_sources_stay(tmp_path, os_id):
    apt = tmp_path / "apt"
    apt.mkdir()
    (apt / "sources.list").write_text("deb http://deb.example.org/debian stable main\n")
    _run_unit(render.render_worker(answers(os_id)), "apt-mirror", APT_ETC=str(apt))
    assert [p.name for p in apt.iterdir()] == ["sources.list"]


@pytest.mark.parametrize("index, trusted", [
    ("http://10.26.0.1:8081/simple", "10.26.0.1"),
    ("http://user@pypi.site.example:3141/root/pypi/+simple/", "pypi.site.example"),
    ("https://pypi.site.example/simple", None),
])
@pytest.mark.parametrize("role", ["master", "worker"])
def test_pip_index_is_every_pips_and_a_plain_http_host_is_trusted(tmp_path, role, index, trusted):
    a = answers("debian13", pip_index_url=index)
    script = render.render_master(a) if role == "master" else render.render_worker(a)
    conf = tmp_path / "pip.conf"
    _run_unit(script, "pip-config", PIP_CONF=str(conf))
    shown = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                           text=True, check=True, env={"PIP_CONFIG_FILE": str(conf),
                                                       "HOME": str(tmp_path)}).stdout
    expected = {f"global.index-url='{index}'"}
    if trusted:
        expected.add(f"global.trusted-host='{trusted}'")
    # (this machine's own /etc/xdg/pip may add other keys: only these two are ours)
    ours = {line for line in shown.splitlines()
            if line.startswith(("global.index-url=", "global.trusted-host="))}
    assert ours == expected


def test_no_pip_index_writes_no_pip_conf(tmp_path):
    conf = tmp_path / "pip.conf"
    _run_unit(render.render_worker(answers("ubuntu2404")), "pip-config", PIP_CONF=str(conf))
    assert not conf.exists()


@pytest.mark.parametrize("changes, words", [
    ({"os_id": "rocky9", "apt_mirror": MIRROR}, "installs with dnf"),
    ({"os_id": "debian13", "apt_mirror": "ftp://mirror/debian"}, "http(s) URL"),
    ({"os_id": "debian13", "apt_mirror": "http://a b"}, "http(s) URL"),
])
def test_a_mirror_that_cannot_apply_is_refused_naming_it(changes, words):
    with pytest.raises(render.RenderError) as err:
        render.render_master(answers(**changes))
    assert err.value.field == "apt_mirror"
    assert words in str(err.value)


def test_the_wizard_passes_both_to_master_and_workers(ecm_moto, workdir):  # noqa: F811
    image = ecm_moto.images["debian-12-amd64-20240717-1811"]
    result = run(ecm_moto, workdir, "--yes", "--os", "debian12", "--image", image, "-o", "m",
                 "--apt-mirror", MIRROR, "--index-url", "http://10.26.0.1:8081/simple")
    assert result.returncode == 0, result.stderr
    master = master_text(workdir / "m")
    worker = base64.b64decode(embedded_config(master)["ec2"]["user_data_b64"]).decode()
    for script in (master, worker):
        assert _values(script) == {"APT_MIRROR": MIRROR, "APT_SUITE": "bookworm",
                                   "APT_COMPONENTS": "main",
                                   "PIP_INDEX": "http://10.26.0.1:8081/simple"}
    refused = run(ecm_moto, workdir, "--yes", "--os", "rocky9", "--image", image, "-o", "r",
                  "--apt-mirror", MIRROR)
    assert refused.returncode == 2 and "apt_mirror" in refused.stderr
    assert "Traceback" not in refused.stderr and not Path(workdir / "r").exists()
