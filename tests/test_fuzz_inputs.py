"""Fuzz (hypothesis) the loaders and the wizard with random files and answers (issue 11): no
exception escapes as "unexpected error"; every refusal exits 2 and names the file with the key
or the line.  The number of examples is bounded so the whole file runs in CI in well under a
minute."""
from __future__ import annotations

import contextlib
import io
import math
import os
import re
import tempfile

import pexpect
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ecm import conf as ecm_conf
from ecm import wizard
from elastiq import cli, config
from elastiq.sim import workload as wl
from tests.test_ecm_wizard import ENTER, KILL_LINE, ecm_moto, spawn

__all__ = ["ecm_moto"]  # fixture

FAST = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
#: problems that concern the whole file, so they have neither a key nor a line
WHOLE_FILE = ("the file is empty", "expected a mapping of sections at the top level")

names = st.sampled_from(sorted(f"{s}.{f}" for s, cls in config.section_classes(config.Config()).items()
                               for f in cls.__dataclass_fields__) + ["bogus.key", "quota"])
numbers = st.one_of(st.integers(-10, 10 ** 30), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([".nan", ".inf", "-.inf", "1e308", "0x10", "1_000"]))
scalars = st.one_of(numbers, st.text(max_size=12), st.booleans(), st.none(),
                    st.lists(st.text(max_size=5), max_size=3))


def _render(value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    return repr(value) if isinstance(value, str) else str(value)


@st.composite
def yaml_files(draw) -> bytes:
    lines, section = [], None
    for key in draw(st.lists(names, max_size=8)):
        head, _, name = key.partition(".")
        if head != section:
            lines.append(f"{head}:")
            section = head
        lines.append(f"  {name or 'x'}: {_render(draw(scalars))}")
    text = "\n".join(lines)
    if draw(st.booleans()):  # damage it
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["", "\t", ": :", "\x00", "[", "&a *a"])) + text[cut:]
    return text.encode("utf-8", "surrogatepass")


@st.composite
def ini_files(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["section", "pair", "pair", "garbage"]))
        if kind == "section":
            lines.append(f"[{draw(st.sampled_from(['elastiq', 'quota', 'ec2', 'debug', 'vm', 'x']))}]")
        elif kind == "pair":
            key = draw(names).partition(".")[2] or "k"
            lines.append(f"{key} = {_render(draw(scalars))}")
        else:
            lines.append(draw(st.text(max_size=10)))
    return ("[elastiq]\n" + "\n".join(lines)).encode("utf-8", "surrogatepass")


def _file(data: bytes, suffix: str) -> str:
    handle = tempfile.NamedTemporaryFile("wb", suffix=suffix, delete=False)
    with handle:
        handle.write(data)
    return handle.name


def _cli(main, argv):
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as stop:  # argparse
            code = stop.code
    return code, err.getvalue()


def _names_key_or_line(message: str) -> bool:
    return bool(re.search(r"line \d+|\b[a-z0-9]+\.[a-z_0-9]+\b|\b[A-Z_]{6,}\b", message)) or \
        any(problem in message for problem in WHOLE_FILE)


@FAST
@given(st.one_of(yaml_files(), ini_files(), st.binary(max_size=120)))
def test_config_files(data):
    path = _file(data, ".yaml")
    try:
        try:
            config.load(path)
        except config.InvalidConfig as err:
            assert str(err).startswith(path) and _names_key_or_line(str(err)), str(err)
        code, err = _cli(cli.main, ["config", "check", path])
        assert code in (0, 2) and "unexpected error" not in err, err
        if code == 2:
            assert path in err and _names_key_or_line(err), err
    finally:
        os.unlink(path)


ecm_keys = st.sampled_from(list(ecm_conf.KEYS) + ["OTHER", "", "export MAX_VMS"])
ecm_values = st.one_of(st.text(max_size=12), st.integers(-5, 10 ** 30).map(str),
                       st.sampled_from(["'quoted'", '"half', "1e3", "nan"]))


@FAST
@given(st.one_of(st.lists(st.tuples(ecm_keys, ecm_values), max_size=9).map(
    lambda pairs: "\n".join(f"{k}={v}" for k, v in pairs).encode("utf-8", "surrogatepass")),
    st.binary(max_size=80)))
def test_ecm_conf_files(data):
    path = _file(data, ".conf")
    try:
        code, err = _cli(wizard.main, ["--conf", path, "--yes"])  # --yes without --os: exit 2
        assert code == 2 and "unexpected error" not in err, err
        if path in err:
            assert _names_key_or_line(err) or "UTF-8" in err, err
    finally:
        os.unlink(path)


swf_tokens = st.one_of(st.integers(-2, 10 ** 14).map(str),
                       st.sampled_from(["nan", "inf", "-inf", "1e400", "x", "-1", "0", "1.5"]))


@FAST
@given(st.one_of(st.lists(st.lists(swf_tokens, min_size=17, max_size=19).map(" ".join),
                          max_size=6).map(lambda ls: ("; MaxProcs: 4\n" + "\n".join(ls)).encode()),
                 st.binary(max_size=120)))
def test_swf_traces(data):
    path = _file(data, ".swf")
    try:
        try:
            wl.read_swf(path)
        except wl.WorkloadError as err:
            assert str(err).startswith(path) and re.match(rf"{re.escape(path)}(:\d+)?: ", str(err))
    finally:
        os.unlink(path)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(os_id=st.one_of(st.sampled_from(sorted(wizard.OPERATING_SYSTEMS)), st.text(max_size=6)),
       image=st.one_of(st.sampled_from(["ami-0123456789ab", "ami-zz"]), st.text(max_size=12)),
       name=st.text(max_size=20), seconds=st.one_of(st.integers(-10, 10 ** 12).map(str),
                                                    st.text(max_size=4)))
def test_wizard_answers_as_flags(ecm_moto, tmp_path, monkeypatch, os_id, image, name, seconds):
    (tmp_path / "ecm.conf").write_text("FLAVOR_VMS=m1.large\nMAX_VMS=5\nMIN_VMS=0\n"
                                       "JOBS_PER_VM=0\nIDLE_TIME=900\nKEY_NAME=\n")
    monkeypatch.chdir(tmp_path)
    for key, value in {"EC2_URL": ecm_moto.url, "EC2_ACCESS_KEY": "testing",
                       "EC2_SECRET_KEY": "testing-secret"}.items():
        monkeypatch.setenv(key, value)
    code, err = _cli(wizard.main, ["--yes", "--os", os_id, "--image", image, "--cluster-name",
                                   name, "--master-lost-shutdown", seconds, "-o", "out"])
    assert code == 2 and "unexpected error" not in err, err  # no such image in moto: exit 2


def test_wizard_typed_answers(ecm_moto, tmp_path):
    """Random text typed at the wizard's cluster-name prompt, then Ctrl-D: refused or accepted,
    it always ends in a clean exit 2 with nothing written."""
    (tmp_path / "ecm.conf").write_text("FLAVOR_VMS=m1.large\nMAX_VMS=5\nMIN_VMS=0\n"
                                       "JOBS_PER_VM=0\nIDLE_TIME=900\nKEY_NAME=\n")

    @settings(max_examples=2, deadline=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate])
    @given(st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=1, max_size=15))
    def typed(text):
        child = spawn(ecm_moto, tmp_path, "--one-flavour")  # the family question is not the subject
        child.expect("Operating system")
        child.send(ENTER)
        child.expect("Image for the")
        child.send(ENTER)
        child.expect("Cluster name:")
        child.send(KILL_LINE + text)
        child.expect_exact(text[-1])
        child.send(ENTER)
        refused = child.expect(["1-63 letters", "Embed the cloud credentials"]) == 0
        child.send((KILL_LINE if refused else "") + "\x04")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 2 and "unexpected error" not in child.before
        assert [p.name for p in tmp_path.iterdir()] == ["ecm.conf"]

    typed()
