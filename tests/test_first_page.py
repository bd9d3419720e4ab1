"""The first page imports nothing heavy; the warm-up after it loads what a first job needs.

Run in a fresh interpreter (this test process has torch loaded long ago), with a finder on
`sys.meta_path` that notes which thread first looks for each module.
"""

import json
import os
import subprocess
import sys

from repo_paths import REPO

SCRIPT = r"""
import json, sys, threading

HEAVY = ("torch", "sklearn", "scipy", "pandas")
first = {}

class Note:
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in HEAVY and top not in first:
            first[top] = threading.current_thread().name
        return None

sys.meta_path.insert(0, Note())

from streamlit.testing.v1 import AppTest

at = AppTest.from_file("streamlit_app.py", default_timeout=120).run()
assert not at.exception, [e.value for e in at.exception]
title = [t.value for t in at.title]
# A lookup without an import (importlib.util.find_spec) asks the finder too.
before = {m: t for m, t in first.items() if m in sys.modules}
first = before.copy()

from dashboard import warm

warm.after_first_page().join(300)
print(json.dumps({"title": title, "before": before, "after": first,
                  "dynamo": "torch._dynamo" in sys.modules,
                  "splits": "sklearn.model_selection" in sys.modules}))
"""


def test_home_renders_without_heavy_imports_and_the_warm_up_loads_them_after(tmp_path):
    env = {"DIGITLAB_RUNS": str(tmp_path / "runs"), "DIGITLAB_DATA_HOME": str(tmp_path / "home")}
    r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True,
                       timeout=600, env={**os.environ, **env})
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["title"] == ["Digit Lab"]
    assert out["before"] == {}  # Home drew its page without torch, sklearn, scipy or pandas
    assert out["after"] == {m: "digitlab-warm-up" for m in ("torch", "sklearn", "scipy", "pandas")}
    assert out["dynamo"] and out["splits"]  # the first optimiser and data split pay nothing
