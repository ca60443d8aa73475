"""ecm.conf parsing: the original KEY=VALUE format; every error names the line and the key."""
from __future__ import annotations

import pytest

from ecm.conf import EcmConfError, load, parse

GOOD = """\
# ecm.conf of the original ecm
FLAVOR_VMS=m1.large
MAX_VMS=10
MIN_VMS=1
JOBS_PER_VM=4
IDLE_TIME=3600
KEY_NAME=mykey
"""


def test_original_format_parses():
    conf = parse(GOOD)
    assert (conf.flavour, conf.max_vms, conf.min_vms, conf.jobs_per_vm, conf.idle_time_s,
            conf.key_name) == ("m1.large", 10, 1, 4, 3600, "mykey")


def test_shell_style_export_quotes_spaces_and_empty_key_name():
    conf = parse('export FLAVOR_VMS="m1.large"\n  MAX_VMS = 3\nMIN_VMS=0\nJOBS_PER_VM=0\n'
                 "IDLE_TIME='600'\nKEY_NAME=\n")
    assert (conf.flavour, conf.max_vms, conf.jobs_per_vm, conf.idle_time_s, conf.key_name) == \
        ("m1.large", 3, 0, 600, None)


def test_values_are_literal_text():
    conf = parse(GOOD.replace("KEY_NAME=mykey", "KEY_NAME=my key $(reboot) `id` 'x'"))
    assert conf.key_name == "my key $(reboot) `id` 'x'"


@pytest.mark.parametrize("replace, line, key, words", [
    ("MAX_VMS=10", 3, "MAX_VMS", "whole number"),
    ("MIN_VMS=1", 4, "MIN_VMS", "whole number"),
    ("JOBS_PER_VM=4", 5, "JOBS_PER_VM", "whole number"),
    ("IDLE_TIME=3600", 6, "IDLE_TIME", "whole number"),
])
def test_bad_numbers_name_line_and_key(replace, line, key, words):
    text = GOOD.replace(replace, replace.split("=")[0] + "=ten")
    with pytest.raises(EcmConfError) as err:
        parse(text, "my.conf")
    assert (err.value.line, err.value.key) == (line, key)
    assert str(err.value).startswith(f"my.conf, line {line}, {key}: ")
    assert words in str(err.value) and "'ten'" in str(err.value)


@pytest.mark.parametrize("text, line, key, words", [
    (GOOD + "FLAVOUR=x\n", 8, "FLAVOUR", "unknown key"),
    (GOOD + "MAX_VMS=4\n", 8, "MAX_VMS", "set twice (first on line 3)"),
    (GOOD.replace("MAX_VMS=10", "MAX_VMS 10"), 3, None, "expected KEY=VALUE"),
    (GOOD.replace("MAX_VMS=10", "MAX_VMS=0"), 3, "MAX_VMS", "must be >= 1"),
    (GOOD.replace("MIN_VMS=1", "MIN_VMS=11"), 4, "MIN_VMS", "greater than MAX_VMS"),
    (GOOD.replace("FLAVOR_VMS=m1.large", "FLAVOR_VMS="), 2, "FLAVOR_VMS", "must not be empty"),
    (GOOD.replace("KEY_NAME=mykey", 'KEY_NAME="mykey'), 7, "KEY_NAME", "unbalanced quote"),
    (GOOD.replace("KEY_NAME=mykey", "KEY_NAME=my\x1bkey"), 7, "KEY_NAME", "control characters"),
])
def test_structural_errors(text, line, key, words):
    with pytest.raises(EcmConfError) as err:
        parse(text)
    assert (err.value.line, err.value.key) == (line, key)
    assert words in str(err.value)


def test_missing_key_is_named():
    with pytest.raises(EcmConfError) as err:
        parse(GOOD.replace("IDLE_TIME=3600\n", ""))
    assert err.value.key == "IDLE_TIME" and err.value.line is None
    assert "missing" in str(err.value)


def test_load_reads_a_file_and_explains_a_missing_one(tmp_path):
    path = tmp_path / "ecm.conf"
    path.write_text(GOOD)
    assert load(str(path)).max_vms == 10
    with pytest.raises(EcmConfError) as err:
        load(str(tmp_path / "nope.conf"))
    assert "no such file" in str(err.value) and "--conf" in str(err.value)


def test_the_shipped_example_parses():
    from pathlib import Path
    example = Path(__file__).resolve().parent.parent / "etc" / "ecm.conf.example"
    conf = load(str(example))
    assert (conf.flavour, conf.min_vms, conf.max_vms) == ("m1.large", 0, 10)
