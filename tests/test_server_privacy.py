"""Which addresses a real `streamlit run` listens on: this computer only by default, the LAN
only with `make serve-class`'s flags. Read from the server process's own sockets."""

import os
import re
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_class_recipe() -> tuple[dict[str, str], list[str]]:
    """The environment and the `streamlit run` flags of the Makefile's serve-class target."""
    text = (REPO / "Makefile").read_text()
    recipe = re.search(r"^serve-class:.*\n\t(.+)$", text, re.M).group(1)
    defaults = dict(re.findall(r"^([A-Z_]+) \?= (\S+)$", text, re.M))  # make's `VAR ?= value`
    recipe = re.sub(r"\$\(([A-Z_]+)\)", lambda m: defaults.get(m.group(1), m.group(0)), recipe)
    env = dict(re.findall(r"\b([A-Z_]+)=(\S+)", recipe.split("streamlit run")[0]))
    flags = recipe.split("streamlit_app.py", 1)[1].split()
    at = flags.index("--server.port")  # the port comes from the test
    return env, flags[:at] + flags[at + 2 :]


def _listening(proc: subprocess.Popen, port: int, tmp_path: Path) -> set[str]:
    url = f"http://127.0.0.1:{port}/_stcore/health"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}: {(tmp_path / 'log').read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail("streamlit not healthy after 60 s")
        time.sleep(0.2)
    p = psutil.Process(proc.pid)
    return {
        c.laddr.ip
        for q in (p, *p.children(recursive=True))
        for c in q.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }


def _start(tmp_path: Path, extra_env: dict, flags: list[str]):
    port = _free_port()
    env = dict(os.environ, STREAMLIT_BROWSER_GATHER_USAGE_STATS="false", **extra_env)
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
           "--server.port", str(port), "--server.headless", "true", *flags]
    log = open(tmp_path / "log", "w")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    return proc, port, log


def _stop(proc: subprocess.Popen, log) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)
    log.close()


@pytest.mark.server
@pytest.mark.parametrize("mode", ["default", "serve-class"])
def test_server_listens_where_intended(mode, tmp_path):
    if mode == "default":
        env, flags, expected = {}, [], {"127.0.0.1"}
    else:
        env, flags = _serve_class_recipe()
        assert env == {"DIGITLAB_PUBLIC": "1", "DIGITLAB_CLASS_MODE": "1"} and "--server.address" in flags
        expected = {"0.0.0.0"}
    env = {**env, "DIGITLAB_RUNS": str(tmp_path / "runs"), "DIGITLAB_DATA_HOME": str(tmp_path / "data")}
    proc, port, log = _start(tmp_path, env, flags)
    try:
        assert _listening(proc, port, tmp_path) == expected
    finally:
        _stop(proc, log)


def test_config_binds_locally_and_keeps_xsrf():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["server"]["enableXsrfProtection"] is True
    assert "enableXsrfProtection" not in (REPO / "Makefile").read_text()
