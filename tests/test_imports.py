"""`repsample --help` is instant: it imports neither torch, scikit-learn nor onnxruntime."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import EXAMPLE

HEAVY = ("torch", "sklearn", "onnxruntime", "faiss")


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['repsample', '--help']\n"
        "from repsample.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "select" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_public_names_still_resolve() -> None:
    import repsample

    for name in repsample.__all__:
        assert getattr(repsample, name) is not None, name


def test_a_default_select_imports_no_scikit_learn(tmp_path: Path) -> None:
    """A first run and a rerun of `repsample select` with its defaults (report included) cluster,
    select and weigh without scikit-learn's 0.6 s import (selection/kmeans.py, estimator.py)."""
    data = tmp_path / "data"
    for group in ("Bag", "Sandal"):
        (data / group).mkdir(parents=True)
        for image in sorted((EXAMPLE / "train" / group).iterdir())[:12]:
            (data / group / image.name).write_bytes(image.read_bytes())
    env = {**os.environ, "REPSAMPLE_MODELS_DIR": str(tmp_path / "models")}
    for run in ("first", "rerun"):
        code = (
            "import sys\n"
            f"sys.argv = ['repsample', 'select', {str(data)!r}, {str(tmp_path / run)!r}, '--per-class', "
            f"'5', '--cache', {str(tmp_path / 'c.db')!r}, '-q']\n"
            "from repsample.cli import main\n"
            "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                             timeout=600)
        assert out.returncode == 0, out.stderr
        assert (tmp_path / run / "report.html").is_file()
        assert out.stdout.strip().splitlines()[-1] == "[]", (run, out.stdout)
