"""Logging: no secret reaches a log line; rotating file or stderr for journald."""
from __future__ import annotations

import base64
import io
import logging
import logging.handlers
import os
import stat

import pytest

from elastiq.adapters.base import AuthError
from elastiq.core import get_policy
from elastiq.runtime import logs
from elastiq.runtime.state import StateStore
from elastiq.runtime.tick import Runtime
from tests.support.world import make_config, world

ACCESS_KEY = "AKIAFAKEFAKEFAKE1234"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYFAKEKEYFAKE"
POOL_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJlbGFzdGlxQHBvb2wifQ.c2lnbmF0dXJlLWZha2U"
POOL_PASSWORD = "Zq8xK2mVn4pR7tW9yB3cD6fH"
USER_DATA = f"#!/bin/bash\necho '{POOL_TOKEN}' > /etc/condor/tokens.d/pool\n" \
            f"condor_store_cred add -c -p {POOL_PASSWORD}\n"
USER_DATA_B64 = base64.b64encode(USER_DATA.encode()).decode()
SECRETS = (ACCESS_KEY, SECRET_KEY, POOL_TOKEN, POOL_PASSWORD, USER_DATA_B64)


@pytest.fixture
def secret_config(tmp_path):
    return make_config(tmp_path, ec2={"aws_access_key_id": ACCESS_KEY,
                                      "aws_secret_access_key": SECRET_KEY,
                                      "user_data_b64": USER_DATA_B64})


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {n: logging.getLogger(n).level for n in ("elastiq", *logs.QUIET, *logs.QUIETER)}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if handler not in handlers:
            handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, lvl in levels.items():
        logging.getLogger(name).setLevel(lvl)


def test_the_redactor_masks_configured_and_recognisable_secrets(secret_config):
    redact = logs.Redactor(logs.secrets_of(secret_config))
    line = (f"key {ACCESS_KEY} secret {SECRET_KEY} data {USER_DATA_B64} token {POOL_TOKEN} "
            f"pw {POOL_PASSWORD} other AKIAOTHERKEY00000000 aws_secret_access_key=abc123xyz "
            f"password: 'hunter22' jwt eyJ0eXAiOiJKV1Qi.eyJpc3MiOiJjb25kb3Ii.c2lnbmF0dXJl")
    out = redact(line)
    for secret in SECRETS + ("AKIAOTHERKEY00000000", "abc123xyz", "hunter22", "eyJ0eXAiOiJKV1Qi"):
        assert secret not in out
    assert out.startswith("key *** secret *** data *** token *** pw *** other ***")
    assert "aws_secret_access_key=***" in out and "password: '***" in out
    assert redact("launch 3: 11 jobs waiting 140 s > 40 s, 1 VM booting") == \
        "launch 3: 11 jobs waiting 140 s > 40 s, 1 VM booting"


def test_a_tick_with_secrets_in_the_config_logs_none_of_them(secret_config, tmp_path, caplog):
    clock, cloud, batch = world()
    rt = Runtime(secret_config, get_policy("default"), batch, cloud,
                 StateStore(str(tmp_path / "state")), clock=clock)
    batch.submit(4)
    batch.claimed[cloud.add(launched_at=clock.now - 900)] = 1
    with caplog.at_level(logging.DEBUG):
        wake = rt.tick("start")
        clock.now = wake
        rt.tick("wake")
    assert cloud.launch_calls  # the tick did act and log
    assert "launch" in caplog.text
    for secret in SECRETS:
        assert secret not in caplog.text


def test_log_file_redacts_what_a_leaky_library_or_error_would_print(secret_config, tmp_path):
    path = tmp_path / "log" / "elastiq.log"
    handler = logs.setup(secret_config, str(path), level="DEBUG")
    assert isinstance(handler, logging.handlers.RotatingFileHandler)
    assert handler.maxBytes == 10 * 1024 * 1024 and handler.backupCount == 5
    logging.getLogger("elastiq.adapters.ec2.cloud").warning("request failed: %s", AuthError(
        f"AuthFailure for {ACCESS_KEY} signed with {SECRET_KEY}"))
    logging.getLogger("elastiq.x").info("user data was %s", USER_DATA)
    try:
        raise RuntimeError(f"boom {POOL_PASSWORD}")
    except RuntimeError:
        logging.getLogger("elastiq.y").exception("with traceback")
    logging.getLogger("botocore.endpoint").debug("Sending http request: %s", SECRET_KEY)
    handler.flush()
    text = path.read_text()
    assert "request failed: AuthFailure for *** signed with ***" in text
    assert "RuntimeError: boom ***" in text
    assert "botocore" not in text  # quiet below WARNING even at log_level DEBUG
    for secret in SECRETS:
        assert secret not in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_journald_mode_logs_to_the_stream_without_timestamps(secret_config):
    stream = io.StringIO()
    logs.setup(secret_config, None, stream=stream)
    logging.getLogger("elastiq.runtime.actuator").info("launch 1: because")
    logging.getLogger("elastiq.runtime.actuator").debug("not at INFO")
    assert stream.getvalue() == "INFO elastiq.runtime.actuator: launch 1: because\n"
