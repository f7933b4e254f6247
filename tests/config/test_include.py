"""``include``: files and glob patterns relative to the configuration's directory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mailgate.config import ConfigError, load_config, loader

AUTH = "auth_http 127.0.0.1:9;"


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_include_in_every_context(tmp_path):
    write(tmp_path / "etc/mail.conf", "include main.d/*.conf;\nevents { include events.inc; }\n"
          "mail { include mail.inc; server { include server.inc; } }\n")
    write(tmp_path / "etc/main.d/1.conf", "worker_processes 3;\n")
    write(tmp_path / "etc/events.inc", "worker_connections 99;\n")
    write(tmp_path / "etc/mail.inc", AUTH + "\n")
    write(tmp_path / "etc/server.inc", "listen 127.0.0.1:30143; protocol pop3;\n")
    config = load_config(str(tmp_path / "etc/mail.conf"), prefix=str(tmp_path / "prefix"))
    assert config.main.worker_processes == 3 and config.main.worker_connections == 99
    assert config.servers[0].protocol == "pop3"
    assert [p for p, _ in config.files] == [str(tmp_path / "etc" / n) for n in (
        "mail.conf", "main.d/1.conf", "events.inc", "mail.inc", "server.inc")]


def test_glob_order_and_directories_skipped(tmp_path):
    write(tmp_path / "mail.conf", "mail { %s include servers/*; }\n" % AUTH)
    write(tmp_path / "servers/b.conf", "server { listen 127.0.0.1:2; protocol imap; }\n")
    write(tmp_path / "servers/a.conf", "server { listen 127.0.0.1:1; protocol imap; }\n")
    (tmp_path / "servers/subdir").mkdir()
    config = load_config(str(tmp_path / "mail.conf"))
    assert [s.listens[0].port for s in config.servers] == [1, 2]


def test_error_location_is_in_the_included_file(tmp_path):
    write(tmp_path / "mail.conf", "mail {\ninclude inc.conf;\n}\n")
    write(tmp_path / "inc.conf", "\n\nbad directive;\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "mail.conf"))
    assert str(info.value) == 'unknown directive "bad" in %s:3' % (tmp_path / "inc.conf")


def test_missing_include_is_located_at_the_include(tmp_path):
    write(tmp_path / "mail.conf", "\ninclude nothere.conf;\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "mail.conf"))
    assert str(info.value) == 'open() "%s" failed (2: No such file or directory) in %s:2' % (
        tmp_path / "nothere.conf", tmp_path / "mail.conf")


def test_included_file_cannot_close_the_block(tmp_path):
    write(tmp_path / "mail.conf", "mail {\ninclude inc.conf;\n}\n")
    write(tmp_path / "inc.conf", "}\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "mail.conf"))
    assert str(info.value) == 'unexpected "}" in %s:1' % (tmp_path / "inc.conf")


def test_self_include_is_stopped(tmp_path):
    write(tmp_path / "mail.conf", "include mail.conf;\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "mail.conf"))
    assert "too deep nesting" in str(info.value)


def test_unreadable_include(tmp_path):
    write(tmp_path / "mail.conf", "include dir;\n")
    (tmp_path / "dir").mkdir()
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "mail.conf"))
    assert str(info.value) == 'open() "%s" failed (21: Is a directory) in %s:1' % (
        tmp_path / "dir", tmp_path / "mail.conf")


# -- bounded reading (issue 11, defect 2) ------------------------------------------------


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_a_device_is_refused_before_reading(tmp_path, device):
    write(tmp_path / "mail.conf", "mail { include %s; }\n" % device)
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "mail.conf"))
    assert str(info.value) == '"%s" is not a regular file in %s:1' % (device, tmp_path / "mail.conf")


def test_a_device_as_the_main_file_is_refused():
    with pytest.raises(ConfigError) as info:
        load_config("/dev/zero")
    assert str(info.value) == '"/dev/zero" is not a regular file'


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    write(tmp_path / "mail.conf", "mail { include fifo; }\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "mail.conf"))  # opening it blocking would never return
    assert str(info.value).startswith('"%s" is not a regular file' % (tmp_path / "fifo"))


def test_what_all_the_files_hold_is_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "MAX_CONFIG_BYTES", 1000)
    write(tmp_path / "mail.conf", "mail { include a.conf; include b.conf; }\n")
    write(tmp_path / "a.conf", "#" * 500 + "\n")
    write(tmp_path / "b.conf", "#" * 500 + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(tmp_path / "mail.conf"))
    assert str(info.value) == (
        '"%s" is too large: a configuration may hold 1000 bytes in all in %s:1'
        % (tmp_path / "b.conf", tmp_path / "mail.conf"))


def test_invalid_bytes_are_printed_raw_as_nginx_prints_them(tmp_path):
    (tmp_path / "mail.conf").write_bytes(b"mail { foo\xff\xfe bar; }\n")
    result = subprocess.run([sys.executable, "-m", "mailgate", "-t", "-c", str(tmp_path / "mail.conf")],
                            capture_output=True, timeout=60)
    assert result.returncode == 1
    assert b'unknown directive "foo\xff\xfe" in ' in result.stderr
    assert b"\\udc" not in result.stderr


def test_a_path_ends_at_its_first_nul_byte(tmp_path):
    # nginx's paths are C strings (found by the config fuzz target: open() raised ValueError)
    (tmp_path / "mail.conf").write_bytes(b'mail { include "a.conf\0junk"; }\n')
    write(tmp_path / "a.conf", AUTH + "\n")
    config = load_config(str(tmp_path / "mail.conf"))
    assert [p for p, _ in config.files] == [str(tmp_path / "mail.conf"), str(tmp_path / "a.conf")]
