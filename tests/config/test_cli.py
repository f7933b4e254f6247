"""The ``mailgate`` command's options for testing configurations: -t -T -q -p -c -g -e -v -V -h."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mailgate import cli
from tests.config.helpers import parse_log_lines
from tests.support.components import require

GOOD = "events {}\nmail { auth_http 127.0.0.1:9; server { listen 127.0.0.1:30143; protocol imap; } }\n"


def run(argv, capsys):
    capsys.readouterr()
    status = cli.main(argv)
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.fixture
def conf_dir(tmp_path):
    (tmp_path / "mail.conf").write_text(GOOD)
    return tmp_path


def test_success_lines(conf_dir, capsys):
    path = conf_dir / "mail.conf"
    status, out, err = run(["-t", "-c", str(path)], capsys)
    assert status == 0 and out == ""
    assert err == (
        "mailgate: the configuration file %s syntax is ok\n"
        "mailgate: configuration file %s test is successful\n" % (path, path)
    )


def test_quiet_prints_nothing_on_success(conf_dir, capsys):
    assert run(["-tq", "-c", str(conf_dir / "mail.conf")], capsys) == (0, "", "")


def test_failure_line_and_status(conf_dir, capsys):
    (conf_dir / "bad.conf").write_text("mail {\n  timeout x;\n}\n")
    status, out, err = run(["-t", "-q", "-c", str(conf_dir / "bad.conf")], capsys)
    assert status == 1
    assert parse_log_lines(err) == [
        ("emerg", '"timeout" directive invalid value in %s:2' % (conf_dir / "bad.conf"))]
    assert err.endswith("mailgate: configuration file %s test failed\n" % (conf_dir / "bad.conf"))


def test_missing_file(tmp_path, capsys):
    status, _, err = run(["-t", "-c", str(tmp_path / "none.conf")], capsys)
    assert status == 1
    assert parse_log_lines(err) == [
        ("emerg", 'open() "%s" failed (2: No such file or directory)' % (tmp_path / "none.conf"))]


def test_relative_conf_file_is_taken_from_the_prefix(conf_dir, capsys):
    status, _, err = run(["-t", "-p", str(conf_dir), "-c", "mail.conf"], capsys)
    assert status == 0 and str(conf_dir / "mail.conf") in err


def test_attached_option_values(conf_dir, capsys):
    assert run(["-tq", "-p%s" % conf_dir, "-cmail.conf"], capsys)[0] == 0


def test_global_directives(conf_dir, capsys):
    status, _, err = run(["-t", "-c", str(conf_dir / "mail.conf"), "-g", "worker_processes 2;"], capsys)
    assert status == 0
    status, _, err = run(["-t", "-c", str(conf_dir / "mail.conf"), "-g", "foo;"], capsys)
    assert status == 1 and parse_log_lines(err) == [("emerg", 'unknown directive "foo" in command line')]
    status, _, err = run(["-t", "-c", str(conf_dir / "mail.conf"), "-g", "pid x"], capsys)
    assert parse_log_lines(err) == [
        ("emerg", 'unexpected end of parameter, expecting ";" in command line')]


def test_global_directive_duplicate_of_the_file(conf_dir, capsys):
    (conf_dir / "w.conf").write_text("worker_processes 1;\n" + GOOD)
    status, _, err = run(["-t", "-c", str(conf_dir / "w.conf"), "-g", "worker_processes 2;"], capsys)
    assert status == 1
    assert parse_log_lines(err) == [
        ("emerg", '"worker_processes" directive is duplicate in %s:1' % (conf_dir / "w.conf"))]


def test_dump(conf_dir, capsys):
    (conf_dir / "inc.conf").write_text("# included\n")
    (conf_dir / "main.conf").write_text("include inc.conf;\n" + GOOD)
    status, out, _ = run(["-T", "-q", "-c", str(conf_dir / "main.conf")], capsys)
    assert status == 0
    assert out == (
        "# configuration file %s:\ninclude inc.conf;\n%s\n"
        "# configuration file %s:\n# included\n\n" % (conf_dir / "main.conf", GOOD, conf_dir / "inc.conf")
    )


def test_error_log_option_writes_the_file_and_stderr(conf_dir, capsys):
    (conf_dir / "bad.conf").write_text("foo;\n")
    status, _, err = run(["-t", "-e", str(conf_dir / "err.log"), "-c", str(conf_dir / "bad.conf")], capsys)
    assert status == 1
    assert 'mailgate: [emerg] unknown directive "foo" in %s:1\n' % (conf_dir / "bad.conf") in err
    assert parse_log_lines((conf_dir / "err.log").read_text()) == [
        ("emerg", 'unknown directive "foo" in %s:1' % (conf_dir / "bad.conf"))]


def test_notices_for_skipped_blocks(conf_dir, capsys):
    (conf_dir / "nginx.conf").write_text(
        "load_module modules/ngx_mail_module.so;\nhttp { server { listen 80; } }\n"
        "stream { server { listen 12345; proxy_pass x; } }\n" + GOOD)
    status, _, err = run(["-t", "-c", str(conf_dir / "nginx.conf")], capsys)
    assert status == 0
    path = conf_dir / "nginx.conf"
    assert parse_log_lines(err) == [
        ("notice", 'the "load_module" directive is ignored, the mail modules are part of mailgate '
                   "in %s:1" % path),
        ("notice", 'the "http" block is ignored: mailgate serves only the mail block in %s:2' % path),
        ("notice", 'the "stream" block is ignored: mailgate serves only the mail block in %s:3' % path),
    ]
    status, _, err = run(["-tq", "-c", str(path)], capsys)
    assert (status, err) == (0, "")


def test_debian_nginx_conf_is_accepted(capsys):
    require("nginx")  # Debian's package brings /etc/nginx/nginx.conf
    status, _, err = run(["-tq", "-c", "/etc/nginx/nginx.conf"], capsys)
    assert status == 0, err


def test_bind_failure_is_reported(conf_dir, capsys):
    (conf_dir / "b.conf").write_text(
        "mail { auth_http 127.0.0.1:9; server { listen 192.0.2.1:30143; protocol imap; } }\n")
    status, _, err = run(["-t", "-c", str(conf_dir / "b.conf")], capsys)
    assert status == 1
    assert parse_log_lines(err) == [
        ("emerg", "bind() to 192.0.2.1:30143 failed (99: Cannot assign requested address)")]


def test_address_in_use_is_not_an_error_when_testing(conf_dir, capsys):
    import socket

    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        (conf_dir / "u.conf").write_text(
            "mail { auth_http 127.0.0.1:9; server { listen 127.0.0.1:%d; protocol imap; } }\n" % port)
        assert run(["-tq", "-c", str(conf_dir / "u.conf")], capsys)[0] == 0


@pytest.mark.parametrize("argv,message", [
    (["-x"], 'invalid option: "x"'),
    (["-c"], 'option "-c" requires file name'),
    (["-p"], 'option "-p" requires directory name'),
    (["-g"], 'option "-g" requires parameter'),
    (["-e"], 'option "-e" requires file name'),
    (["-s"], 'option "-s" requires parameter'),
    (["-s", "foo"], 'invalid option: "-s foo"'),
    (["file"], 'invalid option: "file"'),
])
def test_usage_errors(argv, message, capsys):
    assert run(argv, capsys) == (1, "", "mailgate: %s\n" % message)


def test_version_and_help(capsys):
    status, out, err = run(["-v"], capsys)
    assert (status, out) == (0, "") and err.startswith("mailgate version: mailgate/")
    status, _, err = run(["-V"], capsys)
    assert "built with OpenSSL 3" in err and "running with OpenSSL 3" in err
    assert "compiled extensions:" in err
    status, _, err = run(["-h"], capsys)
    assert "Usage: mailgate [-?hvVtTq]" in err and "-g directives" in err


def test_console_script_entry_point(conf_dir):
    """The installed command runs the same code (python -m mailgate works too)."""
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-m", "mailgate", "-t", "-c", str(conf_dir / "mail.conf")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "test is successful" in proc.stderr


def test_session_store_without_its_packages_fails_the_test(tmp_path, pki, monkeypatch, capsys):
    # ssl_session_store needs redis and cryptography: without them -t fails (and the
    # master does not start), not each worker
    key = tmp_path / "store.key"
    key.write_bytes(b"k" * 32)
    conf = tmp_path / "mail.conf"
    conf.write_text(
        "events {}\nmail { auth_http 127.0.0.1:9;\n"
        f"ssl_certificate {pki.server_rsa.cert}; ssl_certificate_key {pki.server_rsa.key_file};\n"
        f"ssl_session_store redis://127.0.0.1; ssl_session_store_key {key};\n"
        "server { listen 127.0.0.1:30993 ssl; protocol imap; } }\n")
    assert run(["-tq", "-c", str(conf)], capsys)[0] == 0
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis: ImportError
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    status, out, err = run(["-tq", "-c", str(conf)], capsys)
    assert status == 1
    ((level, message),) = parse_log_lines(err)
    assert level == "emerg"
    assert message.startswith('"ssl_session_store" needs the Python packages redis and cryptography')
