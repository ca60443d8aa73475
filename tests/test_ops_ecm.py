"""ecm with hostile input (issue 11): Ctrl-D at a question, -o into a missing folder, an EC2_URL
that is some other web server, --debug, numbers out of bounds.  Each is a clean message and
exit 2 (bad input) or 1 (cloud), never "unexpected error"."""
from __future__ import annotations

import http.server
import threading

import pexpect
import pytest

from ecm import conf as ecm_conf
from ecm import wizard
from tests.test_ecm_wizard import CONF, ENTER, KILL_LINE, ecm_moto, run, spawn, workdir, written

__all__ = ["ecm_moto", "workdir"]  # fixtures
CTRL_D = "\x04"


def _to_first_text_prompt(child):
    child.expect("Operating system")
    child.send(ENTER)
    child.expect("Image for the AlmaLinux 9")
    child.send(ENTER)
    child.expect("Cluster name:")


@pytest.mark.parametrize("where", ["text", "yes/no"])
def test_ctrl_d_at_a_question_says_nothing_was_written(ecm_moto, workdir, where):
    child = spawn(ecm_moto, workdir)
    _to_first_text_prompt(child)
    if where == "yes/no":
        child.send(ENTER)
        child.expect("Embed the cloud credentials")
    else:
        child.send(KILL_LINE)
    child.send(CTRL_D)
    child.expect(pexpect.EOF)
    out = child.before
    child.close()
    assert "nothing was written" in out and "unexpected error" not in out, out
    assert child.exitstatus == 2
    assert not written(workdir)


def test_output_into_a_missing_folder_names_the_file(ecm_moto, workdir):
    image = ecm_moto.images["debian-12-amd64-20240717-1811"]
    result = run(ecm_moto, workdir, "--yes", "--os", "debian12", "--image", image,
                 "-o", "/nonexistent-dir/master")
    assert result.returncode == 2, result.stderr
    assert "/nonexistent-dir/master" in result.stderr and "No such file" in result.stderr
    assert "unexpected error" not in result.stderr


PAGES = {"xml": b"<html><body>It works!</body></html>",  # parses as XML, has no EC2 answer
         "html": b"<!DOCTYPE html>\n<html><head><title>Welcome</title></head><body><p>It works"
                 b"<br></body></html>"}  # not XML: botocore raises ResponseParserError


class _Html(http.server.BaseHTTPRequestHandler):
    body = b""

    def _page(self):
        body = self.body
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _page

    def log_message(self, *args):
        pass


@pytest.fixture(params=sorted(PAGES))
def web_server(request):
    handler = type("Page", (_Html,), {"body": PAGES[request.param]})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_ec2_url_of_a_web_server_that_is_not_ec2(ecm_moto, workdir, web_server):
    result = run(ecm_moto, workdir, "--yes", "--os", "rocky9", "--image", "ami-0123456789ab",
                 EC2_URL=web_server)
    assert result.returncode == 1, result.stderr
    assert "did not answer" in result.stderr or "not an EC2 response" in result.stderr
    assert "EC2_URL" in result.stderr and "unexpected error" not in result.stderr


def test_debug_shows_the_traceback_of_an_unexpected_error(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(wizard, "run", broken)
    assert wizard.main(["--yes"]) == 1
    assert "run with --debug" in capsys.readouterr().err
    with pytest.raises(RuntimeError, match="a bug"):
        wizard.main(["--yes", "--debug"])


@pytest.mark.parametrize("key, value", [("MAX_VMS", "100000000000000000000000000"),
                                        ("IDLE_TIME", "9" * 30), ("JOBS_PER_VM", "10" + "0" * 9)])
def test_ecm_conf_numbers_have_bounds(key, value):
    text = "".join(f"{key}={value}\n" if line.startswith(key + "=") else line + "\n"
                   for line in CONF.splitlines())
    with pytest.raises(ecm_conf.EcmConfError, match=f"line \\d+, {key}: must be <= \\d+"):
        ecm_conf.parse(text)


@pytest.mark.parametrize("flag", ["--master-lost-shutdown", "--worker-noclaim-shutdown",
                                  "--user-data-limit", "--worker-join-limit"])
def test_number_flags_have_bounds(flag, capsys):
    with pytest.raises(SystemExit) as stop:
        wizard.build_parser().parse_args([flag, "-5"])
    assert stop.value.code == 2 and "not between" in capsys.readouterr().err
