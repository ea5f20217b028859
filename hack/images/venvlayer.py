#!/usr/bin/env python3
"""Helpers for hack/images/build.sh's virtualenv layers (stdlib only).

Subcommands:

  reqs PYPROJECT EXTRA
      Print the requirements of the project with EXTRA, one per line: the base dependencies
      plus the extra's, with references to the project itself (`name[other]`) expanded. The
      project itself is not listed, so a venv built from them holds only third-party code.
  srchash ROOT PATH...
      Print a sha256 over the files under the given paths (relative to ROOT), skipping caches
      and build output; it keys the cached app layer.
  compile UPPER MOUNT
      Byte-compile every .py file present in the overlayfs upper dir UPPER, addressing it
      through the mounted tree MOUNT (so the code objects carry the in-image path). The .pyc
      files are hash-based and unchecked: they stay valid although the layer tar pins every
      mtime, and the images are immutable.
"""

from __future__ import annotations

import hashlib
import os
import py_compile
import re
import stat
import sys
import tomllib
from pathlib import Path

SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", "build", "dist"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(pyproject: Path, extra: str) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    me = _norm(project["name"])
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    reqs: list[str] = list(project.get("dependencies", []))
    pending, seen = [extra], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        if name not in optional:
            raise SystemExit(f"pyproject.toml has no extra {name!r} (has: {', '.join(sorted(optional))})")
        seen.add(name)
        for req in optional[name]:
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", req)
            if match and _norm(match.group(1)) == me:
                pending.extend(e.strip() for e in (match.group(2) or "").split(",") if e.strip())
            else:
                reqs.append(req)
    return sorted(set(reqs))


def source_hash(root: Path, paths: list[str]) -> str:
    sha = hashlib.sha256()
    for rel in sorted(paths):
        base = root / rel
        files = [base] if base.is_file() else []
        if base.is_dir():
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info"))
                files.extend(Path(dirpath) / f for f in sorted(filenames) if not f.endswith((".pyc", ".pyo")))
        for path in files:
            sha.update(str(path.relative_to(root)).encode() + b"\0")
            sha.update(oct(path.stat().st_mode & 0o111).encode() + b"\0")
            sha.update(hashlib.sha256(path.read_bytes()).digest())
    return sha.hexdigest()


def compile_upper(upper: Path, mount: Path) -> int:
    count = 0
    for dirpath, dirnames, filenames in os.walk(upper):
        dirnames.sort()
        for name in filenames:
            if not name.endswith(".py"):
                continue
            full = Path(dirpath) / name
            st = full.lstat()
            if not stat.S_ISREG(st.st_mode):  # whiteouts are character devices
                continue
            target = mount / full.relative_to(upper)
            try:
                py_compile.compile(str(target), doraise=True,
                                   invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
                count += 1
            except (py_compile.PyCompileError, SyntaxError, ValueError):
                pass  # e.g. templates or test data with a .py suffix: left as source, as pip does
    return count


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "reqs":
        print("\n".join(requirements(Path(argv[1]), argv[2])))
    elif len(argv) >= 3 and argv[0] == "srchash":
        print(source_hash(Path(argv[1]), argv[2:]))
    elif len(argv) == 3 and argv[0] == "compile":
        print(compile_upper(Path(argv[1]), Path(argv[2])))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
