"""docs/deployment.md's HAProxy configuration is one HAProxy accepts as it is."""

from __future__ import annotations

import re
import shutil
import subprocess

from tests.support.components import require
from tests.support.proxy import REPO_ROOT


def test_the_documented_haproxy_configuration_is_valid(tmp_path):
    require("haproxy")
    text = (REPO_ROOT / "docs" / "deployment.md").read_text()
    (block,) = re.findall(r"```haproxy\n(.*?)```", text, re.S)
    conf = tmp_path / "haproxy.cfg"
    conf.write_text(block)
    done = subprocess.run([shutil.which("haproxy"), "-c", "-f", str(conf)],
                          capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr).decode(errors="replace")
