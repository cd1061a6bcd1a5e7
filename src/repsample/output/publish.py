"""OUTPUT as a transaction with one writer.

A run builds its whole result in a private staging folder beside OUTPUT (same file system, so a
rename moves it), then publishes it with one atomic rename that swaps the two folders (Linux
``renameat2(RENAME_EXCHANGE)``, macOS ``renamex_np(RENAME_SWAP)``), and only then removes the
previous result. A run killed at any instant leaves OUTPUT as it was or complete; the staging
folder it leaves beside OUTPUT is removed by the next run.

One writer: an advisory lock (``flock``) on ``OUTPUT/.repsample/lock``, held for the whole run,
released by the kernel when the process ends however it ends.

Own only what you wrote: a published OUTPUT carries an inventory of every file and folder
repsample put there (path, inode, type). ``--overwrite`` refuses an OUTPUT that holds anything
else (an empty folder of the user's too), and the previous result is removed entry by entry
against that inventory, never through a symlink and never outside the folder being removed. An
OUTPUT whose inventory no longer proves anything (copied with ``cp -a``, or the inventory
damaged) is taken over again only on the user's word, after a full check (``adopt``).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import filecmp
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import socket
import stat
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from repsample.errors import RepsampleError, mention, os_problem
from repsample.output.layout import STATE

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

LOCK = "lock"
MARKER = "folder.json"  # the folder's own device and inode: proof that repsample made it
INVENTORY = "inventory.json"
_NAME_MAX = 255
ADOPT_HINT = ("if it is a repsample result that was copied (cp -a) or whose .repsample/inventory.json "
              "was damaged, `repsample verify {where} --adopt` checks it against its manifest and "
              "takes it over")


@dataclass(frozen=True)
class Owned:
    """A file, symlink or folder repsample wrote: its path, inode, type and inode generation
    when it was published.

    The same inode and type at the same path is the file repsample made there (perhaps edited
    in place since); anything else at that path (a replacement, a symlink) is not ours. An inode
    number is reused once its file is deleted (ext4 hands it to the next file made), so where the
    file system numbers an inode's generations (ext4, XFS, Btrfs) the generation must match too.
    """

    rel: str
    ino: int
    kind: int  # stat.S_IFMT of the mode: regular file, symlink or folder
    generation: int | None = None  # None: the file system does not tell

    def matches(self, st: os.stat_result, path: Path) -> bool:
        """Whether the entry at ``path`` (``st``: its lstat) is the file this one records."""
        if (st.st_ino, stat.S_IFMT(st.st_mode)) != (self.ino, self.kind):
            return False
        return self.generation is None or inode_generation(path, st) == self.generation


_FS_IOC_GETVERSION = 0x80087601 if sys.maxsize > 2**32 else 0x80047601  # _IOR('v', 1, long)


def inode_generation(path: Path, st: os.stat_result) -> int | None:
    """The generation of a regular file's or folder's inode (Linux FS_IOC_GETVERSION); None
    where there is none to read (a symlink, another system, a file system without generations)."""
    if not sys.platform.startswith("linux") or not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        return None
    import fcntl
    import struct

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            return None  # replaced between the two looks
        raw = fcntl.ioctl(fd, _FS_IOC_GETVERSION, bytes(struct.calcsize("l")))
        return int(struct.unpack("l", raw)[0])
    except OSError:
        return None
    finally:
        os.close(fd)


class OutputTransaction:
    """Hold OUTPUT for one writer and build its next version in a staging folder.

    ``replace``: an earlier result may be replaced (``--overwrite``). ``update``: the stage
    starts as a copy of everything in OUTPUT (hard links), for commands that add to a finished
    run (``evaluate``, ``report``); what repsample did not write is carried over, never adopted.
    Use as a context manager; call ``publish()`` when the stage holds the whole new result.
    Leaving without ``publish()`` removes the stage: OUTPUT is untouched.
    """

    def __init__(self, output: str | Path, *, replace: bool = False, update: bool = False) -> None:
        self.requested = Path(output)
        self.replace, self.update = replace, update
        self.out = Path(os.path.realpath(output))
        self.stage = self.out  # set in __enter__
        self._locks: list[int] = []
        self._created: Path | None = None  # the first folder this run created on the way to OUTPUT
        self._published = False
        self._owned: dict[str, Owned] = {}
        self._carried: dict[str, int] = {}  # update: path -> inode of what was linked into the stage
        self._proven: set[str] = set()  # update: what OUTPUT's inventory proved ours on entering

    # -- entering: check, lock, clean up after killed runs, make the stage --------------------

    def __enter__(self) -> OutputTransaction:
        try:
            self._check_shape()
            if not self.out.exists() and self.out.parent.is_dir():
                self._roll_forward()
            if not self.out.exists():
                self._created = _first_missing(self.out)
                self.out.parent.mkdir(parents=True, exist_ok=True)
                try:
                    self.out.mkdir()
                except FileExistsError:  # another run made it just now: it is not ours to remove
                    self._created = None
            self._check_contents()
            self._locks.append(_lock(self.out / STATE, self.requested))
            self._owned = self._check_contents()  # again: another run may have published meanwhile
            self._remove_leftovers()
            self.stage = self._make_stage()
            if self.update:
                self._proven = _split(self.out, self._owned)[0]
                self._carried = _link_copy(self.out, self.stage)
        except OSError as exc:
            self._abandon()
            raise os_problem(exc, f"preparing OUTPUT {self.requested} ({exc.filename or self.out})",
                             _write_fix(exc)) from None
        except BaseException:
            self._abandon()
            raise
        return self

    def _check_shape(self) -> None:
        if os.path.islink(self.requested) and not self.out.exists():
            raise RepsampleError(f"OUTPUT {self.requested} is a broken symlink; point it at a folder")
        if self.out.exists() and not self.out.is_dir():
            raise RepsampleError(f"OUTPUT {self.requested} is a file; choose a folder")

    def _check_contents(self) -> dict[str, Owned]:
        """The earlier result's inventory; refuse what is not ours or may not be replaced."""
        owned = read_inventory(self.out)
        if self.update:  # nothing is removed that is not carried over: nothing to refuse
            return owned or {}
        proven, foreign = _split(self.out, owned or {})
        where = self.requested
        if foreign and owned is None:
            raise RepsampleError(
                f"OUTPUT {where} is not empty and was not written by this version of repsample "
                f"(e.g. {foreign[0]}); choose an empty or new folder, or "
                + ADOPT_HINT.format(where=where)
            )
        if foreign:
            copied = "; " + ADOPT_HINT.format(where=where) if not proven else ""
            raise RepsampleError(
                f"OUTPUT {where} holds {len(foreign)} file(s) or folder(s) repsample did not write or "
                f"that were replaced since (e.g. {foreign[0]}); {mention('overwrite')} replaces only "
                f"repsample's own output: move them away or choose another folder{copied}"
            )
        if owned and not (self.replace or self.update):
            raise RepsampleError(
                f"OUTPUT {where} is not empty; pass {mention('overwrite')} to replace an earlier "
                "selection or choose an empty folder"
            )
        return owned or {}

    def _stage_prefix(self) -> str:
        name = self.out.name
        if len(os.fsencode(name)) > 180:  # the stage's name must fit NAME_MAX too
            name = name[:60] + "-" + hashlib.sha256(os.fsencode(name)).hexdigest()[:16]
        return f".{name}.repsample-stage-"

    def _leftovers(self) -> list[Path]:
        """Staging folders (or swapped-out results) that killed runs left beside OUTPUT."""
        pattern = re.compile(re.escape(self._stage_prefix()) + r"\d+-[0-9a-f]{8}(-old)?")
        with os.scandir(self.out.parent) as entries:
            return sorted(Path(e.path) for e in entries
                          if pattern.fullmatch(e.name) and e.is_dir(follow_symlinks=False))

    def _roll_forward(self) -> None:
        """Killed between the two renames of a file system without an atomic exchange: the
        complete new result is a published stage; make it OUTPUT."""
        for folder in self._leftovers():
            if not folder.name.endswith("-old") and _folder_is_ours(folder) and read_inventory(folder):
                os.rename(folder, self.out)
                return

    def _remove_leftovers(self) -> None:
        """We hold the lock: no other run is using them. One an update left when it was killed
        before removing it holds links to what OUTPUT holds now (twins): those go too."""
        for folder in self._leftovers():
            kept = remove_folder(folder, twins=self.out if self.out.is_dir() else None)
            if kept:
                logger.warning("kept %d file(s) or folder(s) repsample did not write in %s", kept, folder)

    def _make_stage(self) -> Path:
        stage = self.out.parent / f"{self._stage_prefix()}{os.getpid()}-{secrets.token_hex(4)}"
        stage.mkdir()
        with contextlib.suppress(OSError):
            os.chmod(stage, self.out.stat().st_mode & 0o7777)
        (stage / STATE).mkdir()
        _write_marker(stage)
        self._locks.append(_lock(stage / STATE, self.requested))
        return stage

    # -- publishing -------------------------------------------------------------------------

    def publish(self) -> None:
        """Swap the stage in as OUTPUT, then remove the previous result."""
        try:
            entries = self._inventory()
            _write_inventory(self.stage, entries)
            old = _swap(self.stage, self.out)
        except OSError as exc:
            raise os_problem(exc, f"publishing OUTPUT {self.requested} ({exc.filename or self.out})",
                             _write_fix(exc)) from None
        self._published = True
        if self.update:  # what the writer replaced, at a path the inventory names, is superseded
            replaced = {o.rel for o in entries
                        if o.kind != stat.S_IFDIR and self._carried.get(o.rel, o.ino) != o.ino}
            left = remove_folder(old, twins=self.out, superseded=replaced & set(self._owned))
        else:
            left = remove_folder(old)
        if left:
            logger.warning("kept %d file(s) or folder(s) repsample did not write in %s", left, old)

    def _inventory(self) -> list[Owned]:
        """The stage's entries that are repsample's: all it made, and of what an update carried
        over, what OUTPUT's inventory proved ours and the folders holding any of it."""
        files, folders = _listing(self.stage)
        entries = []
        for rel in files:
            path = self.stage / rel
            st = os.lstat(path)
            if self._carried.get(rel) == st.st_ino and rel not in self._proven:
                continue  # a user's file carried over: kept, never adopted
            entries.append(_owned(rel, path, st))
        held = _ancestors(o.rel for o in entries)
        for rel in folders:
            path = self.stage / rel
            st = os.lstat(path)
            if self._carried.get(rel) != st.st_ino or rel in self._proven or rel in held:
                entries.append(_owned(rel, path, st))
        return entries

    # -- leaving ----------------------------------------------------------------------------

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._abandon()

    def _abandon(self) -> None:
        """Leave: what was not published goes (OUTPUT stays as it was), then the locks."""
        try:
            if not self._published and self.stage != self.out:
                remove_folder(self.stage)
            if self._created is not None and self._locks and not self._published:
                _remove_created(self.out, self._created)  # only while we hold OUTPUT's lock
        finally:
            for fd in self._locks:
                os.close(fd)  # closing the descriptor releases its flock
            self._locks.clear()


def adopt(output: Path, check: Callable[[], bool]) -> bool:
    """Take over OUTPUT as it is now, on the user's word (``repsample verify --adopt``): for an
    OUTPUT copied with ``cp -a`` or whose inventory was damaged, which no inventory proves ours.

    ``check`` says whether OUTPUT holds exactly its result (every file as its manifest says and
    nothing else); it runs under OUTPUT's lock, and what it saw must still be there, entry for
    entry, when the fresh inventory is written. Returns whether OUTPUT was adopted.
    """
    out = Path(os.path.realpath(output))
    try:
        fd = _lock(out / STATE, output)
        try:
            before = _look(out)
            if not check() or _look(out) != before:
                return False
            _write_marker(out)
            files, folders = _listing(out)
            _write_inventory(out, [_owned(rel, out / rel, os.lstat(out / rel)) for rel in files + folders])
        finally:
            os.close(fd)
    except OSError as exc:
        raise os_problem(exc, f"adopting OUTPUT {output} ({exc.filename or out})", _write_fix(exc)) from None
    return True


def _look(root: Path) -> dict[str, tuple[int, ...]]:
    """Every entry under root as it stands (inode, type, size, times): to see nothing moved."""
    files, folders = _listing(root)
    seen: dict[str, tuple[int, ...]] = {}
    for rel in files + folders:
        st = os.lstat(root / rel)
        seen[rel] = (st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return seen


def update_output(output: str | Path, write: Callable[[Path], _T]) -> _T:
    """Add to a finished run (an evaluation, a rebuilt report) as a transaction of its own:
    ``write`` gets a stage holding the current result (hard links) and the stage is published."""
    with OutputTransaction(output, update=True) as transaction:
        result = write(transaction.stage)
        transaction.publish()
    return result


# -- the lock -------------------------------------------------------------------------------------

def _lock(state: Path, shown: Path) -> int:
    """An exclusive flock on state/lock, or one line naming the run that holds it."""
    import fcntl

    if state.is_symlink() or (state.exists() and not state.is_dir()):
        raise RepsampleError(f"{state} is not repsample's folder; move it away")
    state.mkdir(exist_ok=True)
    path = state / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise RepsampleError(
                f"OUTPUT {shown} is being written by another repsample run ({holder}); "
                "wait for it to finish or choose another OUTPUT"
            ) from None
        # A run that published between our open and our lock swapped the folder: lock the new one.
        try:
            same = os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": " ".join(sys.argv)}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    return fd


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (ValueError, KeyError, TypeError, OSError):
        return "pid unknown"


# -- the swap -------------------------------------------------------------------------------------

def _swap(stage: Path, out: Path) -> Path:
    """Make stage OUTPUT in one step; returns where the previous OUTPUT now is."""
    if _exchange(stage, out):
        return stage
    # No atomic exchange on this file system: two renames, with a window of microseconds.
    old = stage.with_name(stage.name + "-old")
    os.rename(out, old)
    os.rename(stage, out)
    return old


def _exchange(a: Path, b: Path) -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
        at_fdcwd, rename_exchange = -100, 2
        result = libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    elif sys.platform == "darwin" and hasattr(libc, "renamex_np"):
        rename_swap = 2
        result = libc.renamex_np(os.fsencode(a), os.fsencode(b), rename_swap)
    else:
        return False
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


# -- inventory and removal --------------------------------------------------------------------------

def _walk(root: Path) -> Iterator[tuple[str, bool]]:
    """(path relative and POSIX, whether a folder) of every entry under root, each folder before
    what it holds; symlinks not followed; repsample's own state folder left out."""
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        with os.scandir(root / rel_dir if rel_dir else root) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                folder = entry.is_dir(follow_symlinks=False)
                if folder and rel == STATE:
                    continue
                if folder:
                    stack.append(rel)
                yield rel, folder


def _files(root: Path) -> Iterator[str]:
    """Paths of every non-folder under root, symlinks included and not followed (see _walk)."""
    return (rel for rel, folder in _walk(root) if not folder)


def _listing(root: Path) -> tuple[list[str], list[str]]:
    """The files and the folders under root (see _walk)."""
    files: list[str] = []
    folders: list[str] = []
    for rel, folder in _walk(root):
        (folders if folder else files).append(rel)
    return files, folders


def _ancestors(rels: Iterable[str]) -> set[str]:
    """Every folder above these paths (relative, POSIX)."""
    above: set[str] = set()
    for rel in rels:
        parts = rel.split("/")[:-1]
        above.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return above


def _owned(rel: str, path: Path, st: os.stat_result) -> Owned:
    return Owned(rel, st.st_ino, stat.S_IFMT(st.st_mode), inode_generation(path, st))


def _write_marker(folder: Path) -> None:
    """folder's own device and inode, in its state folder: proof that repsample made it."""
    st = folder.stat()
    tmp = folder / STATE / f".{MARKER}.tmp"
    _write_json(tmp, {"dev": st.st_dev, "ino": st.st_ino, "pid": os.getpid()})
    os.replace(tmp, folder / STATE / MARKER)


def _write_inventory(root: Path, entries: Iterable[Owned]) -> None:
    tmp = root / STATE / f".{INVENTORY}.tmp"
    _write_json(tmp, {"files": [[o.rel, o.ino, o.kind, o.generation] for o in entries]})
    os.replace(tmp, root / STATE / INVENTORY)


def read_inventory(root: Path) -> dict[str, Owned] | None:
    """The inventory of a published result, or None where there is none (or it is unreadable)."""
    path = root / STATE / INVENTORY
    if path.is_symlink() or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="surrogateescape"))
        owned = [Owned(str(row[0]), int(row[1]), int(row[2]),
                       None if len(row) < 4 or row[3] is None else int(row[3]))  # 0.1: 3 fields
                 for row in data["files"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {o.rel: o for o in owned if _safe_rel(o.rel)}


def _safe_rel(rel: str) -> bool:
    parts = rel.split("/")
    return bool(rel) and not rel.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def _split(root: Path, owned: dict[str, Owned]) -> tuple[set[str], list[str]]:
    """The entries under root the inventory proves repsample wrote, and the others (sorted).

    A file is proven by its entry (same inode, type, generation); a folder by its own entry or by
    holding a proven file (inventories before 0.2 list no folders); an empty folder of the user's
    is therefore foreign, as a user's file is.
    """
    files, folders = _listing(root)

    def proven_entry(rel: str) -> bool:
        entry = owned.get(rel)
        return entry is not None and entry.matches(os.lstat(root / rel), root / rel)

    proven = {rel for rel in files if proven_entry(rel)}
    held = _ancestors(proven)
    proven.update(rel for rel in folders if rel in held or proven_entry(rel))
    return proven, sorted(rel for rel in files + folders if rel not in proven)


def _folder_is_ours(folder: Path) -> bool:
    try:
        marker = json.loads((folder / STATE / MARKER).read_text(encoding="utf-8"))
        st = os.lstat(folder)
        return (int(marker["dev"]), int(marker["ino"])) == (st.st_dev, st.st_ino)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def remove_folder(folder: Path, twins: Path | None = None, superseded: Collection[str] = ()) -> int:
    """Remove a folder repsample made (a stage, or a replaced result); returns the files kept.

    A stage that was never published (its marker proves we made it, it has no inventory) is
    private to the run that made it and goes whole. Anything else loses exactly the files its
    inventory proves repsample wrote, then (for an update swapped out) those that live on at the
    same path under ``twins`` (the very file, or a copy the update made where hard links are
    refused) and the ``superseded`` paths the update rewrote, then the folders that are empty
    by now and proven ours (or carried over to ``twins``). Symlinks are removed, never followed.
    """
    if not folder.is_dir() or folder.is_symlink():
        return 0
    ours = _folder_is_ours(folder)
    owned = read_inventory(folder) if ours else None
    if ours and owned is None:
        shutil.rmtree(folder)
        return 0
    proven, _ = _split(folder, owned or {})
    files, folders = _listing(folder)
    kept = 0
    for rel in files:
        path = folder / rel
        if rel in proven or rel in superseded or _lives_on(path, twins, rel):
            path.unlink()
        else:
            kept += 1
    for rel in reversed(folders):  # each folder after what it holds
        path = folder / rel
        if rel in proven or (twins is not None and _is_folder(twins / rel)):
            with contextlib.suppress(OSError):
                os.rmdir(path)  # only empty folders go
        if _is_empty_folder(path):
            kept += 1  # a folder of the user's (one holding anything is counted by what it holds)
    if not kept:
        shutil.rmtree(folder / STATE, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(folder)
    return kept


def _first_missing(path: Path) -> Path:
    while not path.parent.exists() and path.parent != path:
        path = path.parent
    return path


def _remove_created(out: Path, first: Path) -> None:
    """A run that created OUTPUT (and folders above it) and failed leaves nothing behind."""
    remove_folder(out)
    for folder in [out, *out.parents]:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only empty folders go
        if folder == first:
            break


def _is_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _is_empty_folder(path: Path) -> bool:
    try:
        with os.scandir(path) as entries:
            return not path.is_symlink() and next(entries, None) is None
    except OSError:  # gone, or not a folder
        return False


def _lives_on(path: Path, root: Path | None, rel: str) -> bool:
    """Whether the file at path lives on at root/rel: the very file (same inode), or the copy
    _link_copy made of it where hard links are refused (same type and content)."""
    if root is None:
        return False
    twin_path = root / rel
    try:
        st, twin = os.lstat(path), os.lstat(twin_path)
        if (twin.st_dev, twin.st_ino) == (st.st_dev, st.st_ino):
            return True
        if stat.S_IFMT(twin.st_mode) != stat.S_IFMT(st.st_mode):
            return False
        if stat.S_ISLNK(st.st_mode):
            return os.readlink(path) == os.readlink(twin_path)
        return (stat.S_ISREG(st.st_mode) and st.st_size == twin.st_size
                and filecmp.cmp(path, twin_path, shallow=False))
    except OSError:
        return False


def _link_copy(src: Path, dst: Path) -> dict[str, int]:
    """dst gets every folder under src and every file as a hard link (a symlink linked as
    itself; a copy where links are refused); returns each path's inode in dst."""
    carried = {}
    for rel, folder in list(_walk(src)):
        target, source = dst / rel, src / rel
        if folder:
            target.mkdir()
        else:
            try:
                os.link(source, target, follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                if source.is_symlink():
                    os.symlink(os.readlink(source), target)
                else:
                    shutil.copy2(source, target, follow_symlinks=False)
        carried[rel] = os.lstat(target).st_ino
    return carried


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as fh:
        json.dump(data, fh)


def _write_fix(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ("repsample builds OUTPUT beside it and publishes it by rename: OUTPUT and its parent "
                "folder must be writable")
    return ""

