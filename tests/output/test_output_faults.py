"""Fault injection around OUTPUT: real processes, real SIGKILLs, real file systems.

Every scenario ends with the same check (``assert_settled``): OUTPUT holds exactly what its
manifest lists (``repsample verify``), and nothing outside OUTPUT changed (the neighbourhood is
hashed before and after). Kills happen at points the run reports through its progress hook (the
child kills itself with SIGKILL when it reaches the named event), or at random instants from
outside.
"""

from __future__ import annotations

import csv
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from repsample.output.publish import STATE
from repsample.output.verify import verify_output
from repsample.pipeline import select

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "fashion"
GROUPS = ("train/Bag", "train/Sandal", "val/Bag")
FAST = ("--no-report", "-q")

# The child: the real CLI, its progress replaced by a hook that acts at one named event
# ("open:export", "advance:export:3", "close:thumbs", ...): kill, sleep, remove or rewrite a file.
DRIVER = r"""
import os, signal, sys, time
import repsample.pipeline as pipeline

AT, DO = os.environ.get("FAULT_AT", ""), os.environ.get("FAULT_DO", "")

def act(event):
    print(event, flush=True)
    if event != AT:
        return
    if DO == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif DO == "sleep":
        time.sleep(60)
    elif DO.startswith("unlink:"):
        os.unlink(DO[7:])
    elif DO.startswith("rewrite:"):
        path = DO[8:]
        st = os.stat(path)
        with open(path, "r+b") as fh:
            fh.seek(st.st_size // 2)
            fh.write(b"\x00" * 16)

class Stage:
    def __init__(self, name):
        self.name, self.done = name, 0
    def advance(self, n=1):
        self.done += n
        act(f"advance:{self.name}:{self.done}")
    def close(self):
        act(f"close:{self.name}")

class Hook:
    def stage(self, name, total):
        act(f"open:{name}")
        return Stage(name)
    def expect(self, name, total):
        pass

real = pipeline.select
pipeline.select = lambda *a, progress=None, **k: real(*a, progress=Hook(), **k)
from repsample.cli import main
sys.argv = ["repsample", *sys.argv[1:]]
main()
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder holding INPUT (real example images), a warm cache and an outside 'victim' file."""
    root = tmp_path_factory.mktemp("world")
    for group in GROUPS:
        shutil.copytree(EXAMPLE / group, root / "input" / group)
    (root / "victim").mkdir()
    (root / "victim" / "precious.txt").write_text("not repsample's")
    cache = root / "cache" / "embeddings.sqlite"
    select(root / "input", root / "warm", per_class=5, cache=cache, report=False)
    shutil.rmtree(root / "warm")
    yield root


@pytest.fixture
def w(world: Path, tmp_path: Path) -> Path:
    """A fresh copy of the world for one scenario (the warm cache is shared, read-mostly)."""
    here = tmp_path / "w"
    shutil.copytree(world / "input", here / "input", symlinks=True)
    shutil.copytree(world / "victim", here / "victim")
    (here / "cache").symlink_to(world / "cache")
    return here


def run(w: Path, *args: str, at: str = "", do: str = "", out: str = "out",
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FAULT_AT": at, "FAULT_DO": do}
    cmd = [sys.executable, "-c", DRIVER, "select", str(w / "input"), str(w / out),
           "--cache", str(w / "cache" / "embeddings.sqlite"), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def snapshot(root: Path, skip: tuple[str, ...] = ("out", "cache")) -> dict[str, str]:
    """Every file under root but the skipped top-level entries: path -> content hash (or link)."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        if rel_dir.parts and rel_dir.parts[0] in skip:
            dirnames[:] = []
            continue
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = Path(dirpath, name)
            rel = (rel_dir / name).as_posix()
            if rel.split("/")[0] in skip:
                continue
            seen[rel] = (f"link:{os.readlink(path)}" if path.is_symlink()
                         else hashlib.sha256(path.read_bytes()).hexdigest())
    return seen


def manifest_bytes(out: Path) -> bytes:
    return (out / "manifest.csv").read_bytes()


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if ".repsample-stage-" in p.name)


def assert_settled(w: Path, before: dict[str, str], out: Path | None = None) -> None:
    """OUTPUT equals its manifest; nothing outside OUTPUT (but the cache) changed or appeared."""
    out = out or w / "out"
    result = verify_output(out)
    assert result.ok, result
    assert snapshot(w) == before


def selected_count(out: Path) -> int:
    with open(out / "manifest.csv", newline="") as fh:
        return sum(r["status"] == "selected" for r in csv.DictReader(fh))


def one_line(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])


# -- kills ---------------------------------------------------------------------------------------

KILL_POINTS = ["open:hash", "open:check", "open:export", "advance:export:7", "close:export",
               "open:thumbs", "close:thumbs"]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_killed_run_leaves_previous_result_and_rerun_settles(w: Path, point: str) -> None:
    assert run(w, "--per-class", "10", *FAST).returncode == 0
    before, previous = snapshot(w), manifest_bytes(w / "out")
    killed = run(w, "--per-class", "20", "--overwrite", "-q", at=point, do="kill")
    assert killed.returncode == -signal.SIGKILL, (point, killed.stdout[-300:], killed.stderr)
    assert manifest_bytes(w / "out") == previous  # the previous result, untouched
    assert verify_output(w / "out").ok
    # A rerun with other options reaches the invariant and removes what the kill left beside OUTPUT.
    again = run(w, "--per-class", "3", "--overwrite", *FAST)
    assert again.returncode == 0, again.stderr
    assert selected_count(w / "out") == 3 * len(GROUPS)
    assert leftovers(w / "out") == []
    assert_settled(w, before)


def test_killed_first_run_leaves_no_output_and_rerun_needs_no_overwrite(w: Path) -> None:
    before = snapshot(w)
    assert run(w, "--per-class", "8", *FAST, at="advance:export:4", do="kill").returncode == -9
    assert not (w / "out").exists() or not [p for p in (w / "out").iterdir() if p.name != STATE]
    assert run(w, "--per-class", "8", *FAST).returncode == 0
    assert_settled(w, before)


def test_kills_at_random_instants(w: Path) -> None:
    """From outside, at seeded random times: OUTPUT is always the previous or a new whole result."""
    assert run(w, "--per-class", "4", *FAST).returncode == 0
    before = snapshot(w)
    rng = random.Random(0)
    cmd_env = {**os.environ, "FAULT_AT": "", "FAULT_DO": ""}
    for per_class in (12, 6, 15, 9):
        cmd = [sys.executable, "-c", DRIVER, "select", str(w / "input"), str(w / "out"),
               "--cache", str(w / "cache" / "embeddings.sqlite"), "--per-class", str(per_class),
               "--overwrite", "-q"]
        child = subprocess.Popen(cmd, env=cmd_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for line in child.stdout or ():  # wait until the run is past its imports
            if line.startswith(b"open:export"):
                break
        time.sleep(rng.uniform(0.0, 1.5))
        child.kill()
        child.wait()
        assert verify_output(w / "out").ok
    assert run(w, "--per-class", "2", "--overwrite", *FAST).returncode == 0
    assert_settled(w, before)


def test_second_writer_stops_at_once_naming_the_first(w: Path) -> None:
    assert run(w, "--per-class", "5", *FAST).returncode == 0
    before, previous = snapshot(w), manifest_bytes(w / "out")
    env = {**os.environ, "FAULT_AT": "open:export", "FAULT_DO": "sleep"}
    cmd = [sys.executable, "-c", DRIVER, "select", str(w / "input"), str(w / "out"), "--cache",
           str(w / "cache" / "embeddings.sqlite"), "--per-class", "9", "--overwrite", "-q"]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in first.stdout or ():
            if line.startswith("open:export"):
                break
        t0 = time.monotonic()
        second = run(w, "--per-class", "4", "--overwrite", *FAST)
        one_line(second, 2, "another repsample run", f"pid {first.pid}")
        assert time.monotonic() - t0 < 60
        assert manifest_bytes(w / "out") == previous
    finally:
        first.kill()
        first.wait()
    # The lock died with its process: the next run goes through.
    assert run(w, "--per-class", "4", "--overwrite", *FAST).returncode == 0
    assert_settled(w, before)


# -- what a user (or an attacker) put in OUTPUT or INPUT -------------------------------------------------

def test_edited_manifest_cannot_steer_deletion(w: Path) -> None:
    assert run(w, "--per-class", "5", *FAST).returncode == 0
    before = snapshot(w)
    with open(w / "out" / "manifest.csv", "a", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["precious.txt", "../victim", "selected", "0", "0.1", "1", "0" * 64, "", "", ""])
        writer.writerow(["precious.txt", str(w / "victim"), "selected", "0", "0.1", "1", "0" * 64, "", "",
                         ""])
    result = run(w, "--per-class", "3", "--overwrite", *FAST)
    assert result.returncode == 0, result.stderr
    assert (w / "victim" / "precious.txt").read_text() == "not repsample's"
    assert_settled(w, before)


def test_a_users_file_on_a_reused_inode_is_not_taken_for_ours(w: Path) -> None:
    """Delete an exported image and put your own file at its path: where the file system hands
    the freed inode number to that file (ext4 does), --overwrite must still see it is not ours."""
    from repsample.output.publish import inode_generation

    assert run(w, "--per-class", "5", *FAST).returncode == 0
    ours = next((w / "out" / "train" / "Bag").iterdir())
    st = os.lstat(ours)
    if inode_generation(ours, st) is None:
        pytest.skip("this file system does not number inode generations")
    ours.unlink()
    made = []
    for i in range(64):  # the next files made in that folder may get the freed number
        mine = ours.with_name(f".mine-{i}")
        mine.write_text("the user's own file")
        made.append(mine)
        if os.lstat(mine).st_ino == st.st_ino:
            break
    else:
        pytest.skip("the file system did not reuse the freed inode")
    os.rename(mine, ours)
    for other in made[:-1]:
        other.unlink()
    result = run(w, "--per-class", "3", "--overwrite", *FAST)
    one_line(result, 2, ours.name, "did not write")
    assert ours.read_text() == "the user's own file"


@pytest.mark.parametrize("content", [os.urandom(3000), b"name,age\nbob,3\n", b""])
def test_garbled_manifest_is_replaced_whole(w: Path, content: bytes) -> None:
    assert run(w, "--per-class", "5", *FAST).returncode == 0
    before = snapshot(w)
    with open(w / "out" / "manifest.csv", "r+b") as fh:  # edited in place: still repsample's file
        fh.truncate(0)
        fh.write(content)
    result = run(w, "--per-class", "3", "--overwrite", *FAST)
    assert result.returncode == 0, result.stderr
    assert_settled(w, before)


def test_output_subfolder_replaced_by_link_into_input(w: Path) -> None:
    assert run(w, "--per-class", "5", *FAST).returncode == 0
    shutil.rmtree(w / "out" / "train" / "Bag")
    (w / "out" / "train" / "Bag").symlink_to(w / "input" / "train" / "Bag")
    before = snapshot(w)
    result = run(w, "--per-class", "3", "--overwrite", *FAST)
    one_line(result, 2, "train/Bag", "did not write")
    assert snapshot(w) == before  # INPUT's images behind the link are all there


def test_input_holding_a_link_to_output_never_scans_it(w: Path) -> None:
    assert run(w, "--per-class", "5", *FAST).returncode == 0
    (w / "input" / "train" / "mirror").symlink_to(w / "out")
    before = snapshot(w)
    for follow in ((), ("--follow-symlinks",)):
        result = run(w, "--per-class", "5", "--overwrite", "--report", "-q", *follow)
        assert result.returncode == 0, result.stderr
        with open(w / "out" / "manifest.csv", newline="") as fh:
            groups = {r["group"] for r in csv.DictReader(fh)}
        assert groups == set(GROUPS)
        assert_settled(w, before)


def test_links_out_of_input_are_not_followed_unless_asked(w: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    shutil.copytree(EXAMPLE / "test" / "Bag", outside)
    first = sorted(outside.iterdir())[0]
    (w / "input" / "train" / "Bag" / "stranger.png").symlink_to(first)
    (w / "input" / "train" / "borrowed").symlink_to(outside)
    before = snapshot(w)
    result = run(w, "--per-class", "100", *FAST)
    assert result.returncode == 0, result.stderr
    assert "outside INPUT" in result.stderr and "--follow-symlinks" in result.stderr
    text = manifest_bytes(w / "out").decode()
    assert "stranger.png" not in text and "train/borrowed" not in text
    assert_settled(w, before)
    result = run(w, "--per-class", "100", "--overwrite", "--follow-symlinks", *FAST)
    assert result.returncode == 0, result.stderr
    text = manifest_bytes(w / "out").decode()
    assert "stranger.png" in text and "train/borrowed" in text
    assert_settled(w, before)


def test_longest_legal_file_name_exports(w: Path) -> None:
    name = "n" * 251 + ".png"
    assert len(name.encode()) == 255
    shutil.copy(sorted((w / "input" / "val" / "Bag").iterdir())[0], w / "input" / "val" / "Bag" / name)
    before = snapshot(w)
    result = run(w, "--per-class", "100", *FAST)
    assert result.returncode == 0, result.stderr
    assert (w / "out" / "val" / "Bag" / name).is_file()
    assert_settled(w, before)


# -- INPUT changing under the run ------------------------------------------------------------------------

@pytest.mark.parametrize(("do", "needle"), [("unlink", "vanished"), ("rewrite", "changed")])
def test_input_file_changing_before_export_stops_with_one_line(w: Path, do: str, needle: str) -> None:
    assert run(w, "--per-class", "5", *FAST).returncode == 0
    previous = manifest_bytes(w / "out")
    victim = sorted((w / "input" / "val" / "Bag").iterdir())[0]
    before = snapshot(w)
    result = run(w, "--per-class", "100", "--overwrite", *FAST, at="open:export", do=f"{do}:{victim}")
    one_line(result, 3, victim.name, needle)
    assert manifest_bytes(w / "out") == previous and leftovers(w / "out") == []
    # What the fault did to INPUT is the test's own doing; nothing else outside OUTPUT changed.
    after = snapshot(w)
    rel = victim.relative_to(w).as_posix()
    assert {k: v for k, v in after.items() if k != rel} == {k: v for k, v in before.items() if k != rel}
    assert verify_output(w / "out").ok


# -- the file system says no -----------------------------------------------------------------------------

def test_full_disk_keeps_previous_output(w: Path, small_disk: Path) -> None:
    out = small_disk / "out"
    assert run(w, "--per-class", "2", *FAST, out=str(out)).returncode == 0
    before, previous = snapshot(w), manifest_bytes(out)
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    filler.write_bytes(b"\0" * max(0, free - 96 * 1024))  # leave less than the new result needs
    result = run(w, "--per-class", "200", "--overwrite", "--report", "-q", out=str(out))
    one_line(result, 3, "No space left")
    filler.unlink()
    assert manifest_bytes(out) == previous and verify_output(out).ok and leftovers(out) == []
    assert snapshot(w) == before


def test_read_only_output_fails_before_any_work(w: Path, small_disk: Path) -> None:
    out = small_disk / "out"
    assert run(w, "--per-class", "2", *FAST, out=str(out)).returncode == 0
    previous = manifest_bytes(out)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        result = run(w, "--per-class", "4", "--overwrite", *FAST, out=str(out))
        one_line(result, 3, "Read-only file system")
        assert "open:hash" not in result.stdout  # refused before scanning or embedding anything
        fresh = run(w, "--per-class", "4", *FAST, out=str(small_disk / "new"))
        one_line(fresh, 3, "Read-only file system")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert manifest_bytes(out) == previous and verify_output(out).ok


# -- verify ----------------------------------------------------------------------------------------------

def test_verify_names_every_difference(w: Path) -> None:
    assert run(w, "--per-class", "5", *FAST).returncode == 0
    out = w / "out"
    files = sorted((out / "train" / "Bag").iterdir())
    files[0].unlink()
    files[1].write_bytes(b"tampered")
    (out / "train" / "intruder.png").write_bytes(b"x")
    cmd = [sys.executable, "-c", "from repsample.cli import main; main()", "verify", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert f"missing: train/Bag/{files[0].name}" in result.stdout
    assert f"changed: train/Bag/{files[1].name}" in result.stdout
    assert "extra: train/intruder.png" in result.stdout
    assert "1 missing, 1 changed, 1 extra" in result.stderr


def test_new_selection_drops_the_evaluation_of_the_old_one(w: Path) -> None:
    assert run(w, "--per-class", "6", *FAST).returncode == 0
    cmd = [sys.executable, "-c", "from repsample.cli import main; main()", "evaluate", str(w / "out"),
           "--seeds", "2"]
    evaluated = subprocess.run(cmd, capture_output=True, text=True)
    assert evaluated.returncode == 0, evaluated.stderr
    assert (w / "out" / "evaluation.json").is_file() and verify_output(w / "out").ok
    before = snapshot(w)
    assert run(w, "--per-class", "3", "--overwrite", "--report", "-q").returncode == 0
    assert not (w / "out" / "evaluation.json").exists()
    assert "Evaluation against random" not in (w / "out" / "report.html").read_text(encoding="utf-8")
    assert_settled(w, before)


def test_permission_denied_is_one_line_and_keeps_output(world: Path) -> None:
    """Run as an unprivileged user (root ignores permission bits) against an OUTPUT owned by root."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the child as another user")
    base = Path(tempfile.mkdtemp(prefix="repsample-perm-"))
    try:
        os.chmod(base, 0o755)
        shutil.copytree(world / "input", base / "input")
        (base / "cache").mkdir(mode=0o777)
        os.chmod(base / "cache", 0o777)  # the unprivileged run may use its own cache
        assert run(base, "--per-class", "2", *FAST).returncode == 0  # as root: OUTPUT is root's
        previous = manifest_bytes(base / "out")
        for target in ("out", "fresh"):
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
                   "from repsample.cli import main; main()", "select", str(base / "input"),
                   str(base / target), "--cache", str(base / "cache" / "nobody.sqlite"),
                   "--per-class", "3", "--overwrite", *FAST]
            one_line(subprocess.run(cmd, capture_output=True, text=True), 3, "Permission denied")
        assert manifest_bytes(base / "out") == previous and verify_output(base / "out").ok
        assert not (base / "fresh").exists()
    finally:
        shutil.rmtree(base)
