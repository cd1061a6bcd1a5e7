"""Install size and time: `pip install .` of this checkout against a baseline commit's, each into a
fresh virtual environment, one after the other in one run, wheels from the same index.

The baseline (default 3052c4e) is the last commit whose base install held PyTorch. Each install
runs with --no-cache-dir, so neither profits from the other's downloads; what pip reads from the
machine's local wheel mirror it reads for both. Printed: seconds, the environment's size on disk,
its three biggest packages, and whether `import torch` works in it.

    python bench/install_size.py                      # ~10 min with a torch baseline
    python bench/install_size.py --baseline HEAD~5 --json install.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def size_of(path: Path) -> int:
    """Bytes on disk under path (files only, links not followed)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def install(source: Path, venv: Path) -> dict[str, Any]:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir",
           "--disable-pip-version-check"]
    t0 = time.perf_counter()
    subprocess.run([*pip, str(source)], check=True)
    seconds = time.perf_counter() - t0
    site = next((venv / "lib").glob("python3*/site-packages"))
    packages = sorted(((size_of(p), p.name) for p in site.iterdir() if p.is_dir()), reverse=True)
    torch = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch"],
                           capture_output=True).returncode == 0
    return {"seconds": round(seconds, 1), "mb": round(size_of(venv) / 2**20),
            "biggest": [(name, round(size / 2**20)) for size, name in packages[:3]],
            "imports_torch": torch}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="3052c4e", help="the commit to compare with")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="repsample-install-") as tmp:
        work = Path(tmp)
        baseline = work / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(baseline),
                        args.baseline], check=True, capture_output=True)
        try:
            result = {"baseline": {"rev": args.baseline, **install(baseline, work / "venv-baseline")},
                      "this": install(ROOT, work / "venv-this")}
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(baseline)],
                           check=False, capture_output=True)
            shutil.rmtree(baseline, ignore_errors=True)
    base, this = result["baseline"], result["this"]
    print("| install | seconds | MB on disk | biggest packages (MB) | torch |")
    print("|---|---:|---:|---|---|")
    for name, r in (("baseline " + args.baseline, base), ("this checkout", this)):
        biggest = ", ".join(f"{n} {mb}" for n, mb in r["biggest"])
        print(f"| {name} | {r['seconds']} | {r['mb']} | {biggest} | {r['imports_torch']} |")
    print(f"\nthis / baseline: time {this['seconds'] / base['seconds']:.2f}x, "
          f"size {this['mb'] / base['mb']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
