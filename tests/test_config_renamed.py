"""Knobs renamed for what they do (issue 24 item 3): the old names are still read, with a note;
``elastiq config migrate`` writes the new ones."""
from __future__ import annotations

import pytest
import yaml

from elastiq import config
from elastiq.cli import main


def load(tmp_path, text, name="elastiq.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return config.load(str(path))


@pytest.mark.parametrize("old, new, value", [
    ("sleep_s", "recheck_after_action_s", 7.0),
    ("idle_for_time_s", "idle_timeout_max_s", 1800.0),
    ("idle_boot_factor", "idle_timeout_boot_factor", 3.0),
    ("idle_for_min_s", "idle_timeout_min_s", 300.0),
])
def test_an_old_name_is_read_as_the_new_one_with_a_note(tmp_path, old, new, value):
    cfg = load(tmp_path, f"elastiq: {{{old}: {value:g}}}\n")
    assert getattr(cfg.elastiq, new) == value
    assert cfg.notes == (f"elastiq.{old} is deprecated: write it as elastiq.{new} (read as such)",)


def test_each_old_listing_key_listed_the_cloud_the_shortest_is_the_listing_interval(tmp_path):
    cfg = load(tmp_path, "elastiq: {check_vms_every_s: 3600}\n")
    # the operator sparing DescribeInstances gets what the key's comment promised
    assert cfg.elastiq.list_vms_every_s == 3600 and cfg.elastiq.legacy_check_vms_every_s == 3600
    assert "now elastiq.list_vms_every_s (read as 3600 s)" in cfg.notes[0]
    both = load(tmp_path, "elastiq: {check_vms_every_s: 45, check_vms_in_error_every_s: 20}\n")
    assert both.elastiq.list_vms_every_s == 20 and both.elastiq.legacy_check_vms_every_s == 45
    assert len(both.notes) == 2
    errors = load(tmp_path, "elastiq: {check_vms_in_error_every_s: 60}\n")
    assert errors.elastiq.list_vms_every_s == 60 and errors.elastiq.legacy_check_vms_every_s == 45


@pytest.mark.parametrize("text, key, problem", [
    ("elastiq: {sleep_s: 5, recheck_after_action_s: 6}", "elastiq.sleep_s",
     "renamed elastiq.recheck_after_action_s, which is set too: remove elastiq.sleep_s"),
    ("elastiq: {check_vms_every_s: 45, list_vms_every_s: 30}", "elastiq.check_vms_every_s",
     "which is set too: remove elastiq.check_vms_every_s"),
    ("elastiq: {sleep_s: soon}", "elastiq.sleep_s", "expected a number (got 'soon')"),
    ("elastiq: {sleep_s: 0}", "elastiq.sleep_s", "must be > 0"),
    ("elastiq: {check_vms_every_s: 0}", "elastiq.check_vms_every_s", "must be > 0"),
    ("elastiq: {check_vms_every_s: 0, check_vms_in_error_every_s: 20}",
     "elastiq.check_vms_every_s", "must be > 0"),
    ("elastiq: {check_vms_every_s: 45, check_vms_in_error_every_s: 0}",
     "elastiq.check_vms_in_error_every_s", "must be > 0"),
    ("elastiq: {idle_for_time_s: -1}", "elastiq.idle_for_time_s", "must not be negative"),
])
def test_errors_name_the_key_as_written(tmp_path, text, key, problem):
    with pytest.raises(config.InvalidConfig) as err:
        load(tmp_path, text + "\n")
    assert err.value.key == key and problem in err.value.problem


def test_set_with_an_old_name_overrides_the_file_and_is_noted(tmp_path):
    path = tmp_path / "elastiq.yaml"
    path.write_text("elastiq: {recheck_after_action_s: 6}\n")
    cfg = config.load(str(path), ["elastiq.sleep_s=9"])
    assert cfg.elastiq.recheck_after_action_s == 9
    assert any("elastiq.sleep_s is deprecated" in note for note in cfg.notes)


def test_migrate_writes_the_new_names(tmp_path, capsys):
    old = tmp_path / "elastiq.conf"
    old.write_text("[elastiq]\nsleep_s = 8\ncheck_vms_every_s = 120\ncheck_vms_in_error_every_s = 60\n"
                   "idle_for_time_s = 1800\n[quota]\nmax_vms = 3\n")
    assert main(["config", "migrate", str(old)]) == 0
    out = capsys.readouterr().out
    section = yaml.safe_load(out)["elastiq"]
    assert section == {"recheck_after_action_s": 8.0, "list_vms_every_s": 60.0,
                       "idle_timeout_max_s": 1800.0, "legacy_check_vms_every_s": 120.0}
    new = tmp_path / "new.yaml"
    new.write_text(out)
    assert config.load(str(new)).notes == ()  # nothing deprecated left


def test_show_and_the_summary_name_the_new_knobs(tmp_path, capsys):
    path = tmp_path / "elastiq.yaml"
    path.write_text("quota: {max_vms: 3}\n")
    assert main(["config", "show", str(path)]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)["elastiq"]
    assert {"list_vms_every_s", "recheck_after_action_s", "idle_timeout_max_s",
            "idle_timeout_boot_factor", "idle_timeout_min_s"} <= set(shown)
    assert not {"sleep_s", "check_vms_every_s", "check_vms_in_error_every_s", "idle_for_time_s",
                "idle_boot_factor", "idle_for_min_s"} & set(shown)
    summary = config.summary(config.load(None))
    assert "idle timeout 600-3600 s, cloud listed every 20 s" in summary
