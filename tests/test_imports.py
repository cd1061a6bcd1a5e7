"""`repsample --help` is instant: it imports neither torch, scikit-learn nor onnxruntime."""

from __future__ import annotations

import subprocess
import sys

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
