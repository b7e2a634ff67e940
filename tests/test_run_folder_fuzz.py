"""Fuzz over run folders: damaged copies of a real (tiny, really trained) run, one damage each --
every file truncated, bit-flipped, given non-UTF-8 bytes, replaced by a symbolic link out of the
folder or by a path with '..'; folders replaced by links; LATEST and manifest entries naming
paths; checkpoint files damaged and re-sealed (their manifest updated, as a malicious sender
would). For each copy, `vlkd eval`, `vlkd export`, `vlkd train --resume latest` and `vlkd.load`
either work on the valid part (reading the copy only) or stop with one line and a non-zero exit
code, never a traceback, and no file outside the copy changes (the parent tree is hashed before
and after). Commands run in this process (typer's CliRunner), the base run is trained once."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from functools import partial
from pathlib import Path
from typing import Callable

import pytest
from export_runs import train_run
from typer.testing import CliRunner

import vlkd_core as vlkd
from vlkd_core.errors import VlkdError
from vlkd_core.training import checkpoint as ckpt

pytestmark = pytest.mark.slow

EVAL = "retrieval:dataset=shapes,dataset.size=32,dataset.length=16"
Damage = Callable[[Path], None]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """``root/src/r``: the base run (checkpoints at steps 2 and 4); ``root/victim``: another run
    the damage points at; ``root/outside.txt``: a file outside every run."""
    root = tmp_path_factory.mktemp("fuzz")
    base = train_run(root / "src", "r", max_steps=4, save_every=2, keep_checkpoints=2)
    shutil.copytree(base, root / "victim")
    (root / "outside.txt").write_text("not part of any run\n")
    return root, base


# -- copies: large files are hard links (vlkd never writes them in place; the base run is hashed
# with the rest, so it would be caught), so damage always writes a new file --------------------
def copy_run(base: Path, copy: Path) -> None:
    def link_or_copy(src: str, dst: str) -> None:
        if os.path.getsize(src) > 1 << 20:
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)
    shutil.copytree(base, copy, symlinks=True, copy_function=link_or_copy)


def _rewrite(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


# -- damage to one file ---------------------------------------------------------------------------
def _flip(path: Path, where: float) -> None:
    data = bytearray(path.read_bytes())
    if data:
        data[min(int(len(data) * where), len(data) - 1)] ^= 0xFF
    _rewrite(path, bytes(data))


def _truncate(path: Path, fraction: float) -> None:
    _rewrite(path, path.read_bytes()[: int(path.stat().st_size * fraction)])


def _non_utf8(path: Path, inside: bool) -> None:
    data = path.read_bytes()
    cut = len(data) // 2 if inside else 0
    _rewrite(path, data[:cut] + b"\xff\xfe\xc3\x28" + data[cut + (0 if inside else 4):])


def _link(path: Path, target: Path) -> None:
    path.unlink()
    path.symlink_to(target)


FILE_DAMAGES: dict[str, Callable[[Path, Path, Path], None]] = {
    "empty": lambda p, victim, outside: _truncate(p, 0),
    "half": lambda p, victim, outside: _truncate(p, 0.5),
    "flip-first": lambda p, victim, outside: _flip(p, 0),
    "flip-middle": lambda p, victim, outside: _flip(p, 0.5),
    "flip-last": lambda p, victim, outside: _flip(p, 1),
    "non-utf8-start": lambda p, victim, outside: _non_utf8(p, inside=False),
    "non-utf8-inside": lambda p, victim, outside: _non_utf8(p, inside=True),
    "link-to-other-run": lambda p, victim, outside: _link(p, victim),
    "link-outside": lambda p, victim, outside: _link(p, outside),
    "dotdot-path": lambda p, victim, outside: _rewrite(p, os.path.relpath(victim, p.parent).encode()),
}


def _file_damage(rel: Path, name: str, root: Path) -> Damage:
    def apply(copy: Path) -> None:
        FILE_DAMAGES[name](copy / rel, root / "victim" / rel, root / "outside.txt")
    return apply


# -- damage to folders, pointers and manifests ----------------------------------------------------
def _link_dir(rel: str, root: Path) -> Damage:
    def apply(copy: Path) -> None:
        shutil.rmtree(copy / rel)
        (copy / rel).symlink_to(root / "victim" / rel, target_is_directory=True)
    return apply


def _latest(text: Callable[[Path, Path], str], root: Path) -> Damage:
    def apply(copy: Path) -> None:
        _rewrite(copy / "checkpoints" / "LATEST", text(copy, root / "victim").encode())
    return apply


LATESTS = {
    "relative path to another run": lambda c, v: os.path.relpath(v / "checkpoints" / "step-0000004", c / "checkpoints"),
    "absolute path to another run": lambda c, v: str(v / "checkpoints" / "step-0000004"),
    "name then dotdot": lambda c, v: "step-0000004/" + os.path.relpath(v / "checkpoints" / "step-0000004", c / "checkpoints" / "step-0000004"),
    "a missing step": lambda c, v: "step-0000099",
    "older step with blanks": lambda c, v: "  step-0000002 \n\n",
    "empty": lambda c, v: "",
    "hidden temporary name": lambda c, v: ".tmp-step-0000004-1",
}


def reseal(step: Path, extra: dict | None = None) -> None:
    """Update the manifest to match the files now there (what a malicious sender does)."""
    manifest = json.loads((step / "manifest.json").read_text())
    for name in list(manifest["files"]):
        path = step / name
        if path.is_file():
            manifest["files"][name] = {"size": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    manifest["files"].update(extra or {})
    _rewrite(step / "manifest.json", json.dumps(manifest).encode())


def _resealed(rel: str, change: Callable[[Path], None]) -> Damage:
    def apply(copy: Path) -> None:
        change(copy / rel)
        reseal((copy / rel).parent)
    return apply


def _edit_meta(changes: dict) -> Callable[[Path], None]:
    def change(path: Path) -> None:
        meta = json.loads(path.read_text())
        meta["config"].update(changes)
        _rewrite(path, json.dumps(meta).encode())
    return change


def _manifest_entry_out(root: Path, name: str) -> Damage:
    """A manifest entry naming a file of the other run by a '..' path (with its true checksum)."""
    def apply(copy: Path) -> None:
        step = copy / "checkpoints" / "step-0000004"
        target = root / "victim" / "checkpoints" / "step-0000004" / name
        rel = os.path.relpath(target, step)
        manifest = json.loads((step / "manifest.json").read_text())
        manifest["files"].pop(name, None)
        manifest["files"][rel] = {"size": target.stat().st_size, "sha256": hashlib.sha256(target.read_bytes()).hexdigest()}
        _rewrite(step / "manifest.json", json.dumps(manifest).encode())
    return apply


def damages(root: Path, base: Path) -> dict[str, Damage]:
    cases: dict[str, Damage] = {}
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        rel = path.relative_to(base)
        cases.update({f"{rel} {name}": _file_damage(rel, name, root) for name in FILE_DAMAGES})
    for rel in ("checkpoints", "checkpoints/step-0000004", "checkpoints/step-0000002", "start", "tensorboard"):
        cases[f"{rel} linked to another run"] = _link_dir(rel, root)
    cases.update({f"LATEST {name}": _latest(text, root) for name, text in LATESTS.items()})
    step = "checkpoints/step-0000004"
    cases.update({
        "resealed weights, header flipped": _resealed(f"{step}/weights.safetensors", partial(_flip, where=0.001)),
        "resealed weights, truncated": _resealed(f"{step}/weights.safetensors", partial(_truncate, fraction=0.5)),
        "resealed training state, flipped": _resealed(f"{step}/training.pt", partial(_flip, where=0.3)),
        "resealed training state, truncated": _resealed(f"{step}/training.pt", partial(_truncate, fraction=0.5)),
        "resealed meta, non-utf8": _resealed(f"{step}/meta.json", partial(_non_utf8, inside=True)),
        "resealed meta, output_dir up": _resealed(f"{step}/meta.json", _edit_meta({"output_dir": "../../..", "name": "victim"})),
        "resealed meta, name with dotdot": _resealed(f"{step}/meta.json", _edit_meta({"name": "../victim"})),
        "resealed meta, config a list": _resealed(f"{step}/meta.json", lambda p: _rewrite(p, b'{"config": []}')),
        "manifest weights entry in the other run": _manifest_entry_out(root, "weights.safetensors"),
        "manifest meta entry in the other run": _manifest_entry_out(root, "meta.json"),
    })
    return cases


# -- checking what the commands do ----------------------------------------------------------------
# (path, inode, size, mtime) -> sha256: a file is read again whenever a write could have changed it
# (not on ctime: linking a copy's large file to the base changes that alone)
_HASHES: dict[tuple, str] = {}


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _HASHES[key]


def tree_hashes(root: Path, skip: Path) -> dict[str, str]:
    """Every file and link under ``root`` but ``skip``: content hash, or the link's target."""
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if Path(folder, d) != skip]
        for name in files + [d for d in dirs if Path(folder, d).is_symlink()]:
            path = Path(folder, name)
            out[str(path)] = f"-> {os.readlink(path)}" if path.is_symlink() else _sha256(path)
    return out


def cli(args: list[str]):
    from vlkd_cli.app import app
    result = CliRunner().invoke(app, [str(a) for a in args])
    ckpt.release()  # the CLI process would exit here, dropping its read leases
    return result


def check_cli(result, what: str, copy: Path, root: Path) -> None:
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{what}: traceback {result.exception!r}") from result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, (what, result.stderr)
    if result.exit_code == 0:
        assert all(line.startswith(("warning:", "note:")) for line in lines), (what, result.stderr)
        assert str(root / "victim") not in "".join(result.stdout.split()), (what, result.stdout)  # not read
    else:
        assert len(lines) == 1 and lines[0].startswith("error:"), (what, result.exit_code, result.stderr)


def check_load(copy: Path) -> None:
    try:
        model = vlkd.load(copy)
    except VlkdError as exc:
        assert "\n" not in str(exc), str(exc)
        return
    assert model.source.resolve().is_relative_to(copy.resolve()), model.source


def test_damaged_run_folders_work_on_their_valid_part_or_stop_in_one_line(world):
    root, base = world
    cases = damages(root, base)
    assert len(cases) >= 200, len(cases)
    for n, (name, damage) in enumerate(cases.items()):
        case = root / "cases" / f"{n:03d}"
        copy = case / "runs" / "r"
        copy_run(base, copy)
        damage(copy)
        before = tree_hashes(root, skip=case)
        check_load(copy)
        ckpt.release()
        commands = {"export": ["export", copy, "--format", "safetensors", "--out", case / "out"],
                    "eval": ["eval", copy, "--eval", EVAL],
                    "resume": ["train", "--resume", "latest", "--output-dir", copy.parent, "--name", "r",
                               "--max-steps", "5", "--no-progress"]}
        for command, args in commands.items():
            check_cli(cli(args), f"{name}: {command}", copy, root)
        assert tree_hashes(root, skip=case) == before, f"{name}: a file outside the damaged copy changed"
        shutil.rmtree(case)
