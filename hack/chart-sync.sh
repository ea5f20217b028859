#!/usr/bin/env bash
# Keep the Helm chart in step with its sources:
#   1. charts/qd-extractor/crds/extractionrun.yaml is a byte-for-byte copy of crds/extractionrun.yaml
#      (Helm installs CRDs only from the chart's crds/ folder, which cannot be a symlink in a
#      packaged chart);
#   2. the values table in charts/qd-extractor/README.md is generated from the helm-docs comments
#      (`# -- …`, `# -- (type) …`, `# @default -- …`) in values.yaml; every value must carry one.
#
# Usage: hack/chart-sync.sh           write both
#        hack/chart-sync.sh --check   change nothing; exit 1 and say what drifted (CI, unit tests)
# Needs Python 3 with PyYAML (PYTHON=… to choose the interpreter; default python3).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODE=${1:-write}
case $MODE in
  write|--check) ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac
exec "${PYTHON:-python3}" - "$ROOT" "$MODE" <<'PY'
import json
import re
import sys
from pathlib import Path

import yaml

root, mode = Path(sys.argv[1]), sys.argv[2]
check = mode == "--check"
chart = root / "charts" / "qd-extractor"
problems: list[str] = []

# 1. CRD copy.
src, dst = root / "crds" / "extractionrun.yaml", chart / "crds" / "extractionrun.yaml"
if not dst.exists() or dst.read_bytes() != src.read_bytes():
    if check:
        problems.append(f"{dst.relative_to(root)} differs from {src.relative_to(root)}")
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes())
        print(f"copied {src.relative_to(root)} -> {dst.relative_to(root)}")

# 2. Values table (a small helm-docs: a `# --` comment documents the key right below it).
values_path = chart / "values.yaml"
text = values_path.read_text()
values = yaml.safe_load(text) or {}
KEY = re.compile(r"^(\s*)([A-Za-z0-9_]+):(\s|$)")
docs: dict[str, dict[str, str]] = {}
stack: list[tuple[int, str]] = []
pending: dict[str, str] | None = None
for lineno, line in enumerate(text.splitlines(), 1):
    stripped = line.strip()
    if stripped.startswith("# --"):
        pending = {"description": stripped[4:].strip()}
        continue
    if stripped.startswith("# @default --") and pending is not None:
        pending["default"] = stripped[len("# @default --"):].strip()
        continue
    if stripped.startswith("#"):
        if pending is not None and "default" not in pending:
            pending["description"] += " " + stripped[1:].strip()
        continue
    if not stripped:
        pending = None
        continue
    match = KEY.match(line)
    if not match:  # list items and flow continuations
        continue
    indent, key = len(match.group(1)), match.group(2)
    while stack and stack[-1][0] >= indent:
        stack.pop()
    stack.append((indent, key))
    path = ".".join(k for _, k in stack)
    if pending is not None:
        docs[path] = pending
    pending = None


def lookup(path: str) -> object:
    node: object = values
    for part in path.split("."):
        node = node[part]  # type: ignore[index]
    return node


def leaves(node: object, prefix: str = "") -> list[str]:
    if isinstance(node, dict) and node:
        out: list[str] = []
        for key, child in node.items():
            out.extend(leaves(child, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return [prefix]


for leaf in leaves(values):
    parts = leaf.split(".")
    if not any(".".join(parts[:i]) in docs for i in range(len(parts), 0, -1)):
        problems.append(f"values.yaml: {leaf} has no `# --` comment")


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


rows = ["| Key | Type | Default | Description |", "|-----|------|---------|-------------|"]
for path, doc in docs.items():
    value = lookup(path)
    hint = re.match(r"^\((\w[\w ]*)\)\s*", doc["description"])  # helm-docs: `# -- (int) text`
    kind = hint.group(1) if hint else type_name(value)
    if hint:
        doc["description"] = doc["description"][hint.end():]
    default = doc.get("default") or f"`{json.dumps(value, separators=(',', ':'))}`"
    description = doc["description"].replace("|", "\\|")
    rows.append(f"| {path} | {kind} | {default} | {description} |")
table = "\n".join(rows)

readme_path = chart / "README.md"
BEGIN, END = "<!-- values-table:begin -->", "<!-- values-table:end -->"
readme = readme_path.read_text() if readme_path.exists() else ""
if BEGIN not in readme or END not in readme:
    problems.append(f"{readme_path.relative_to(root)} lacks the markers {BEGIN} … {END}")
else:
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    fresh = f"{head}{BEGIN}\n{table}\n{END}{tail}"
    if fresh != readme:
        if check:
            problems.append(f"{readme_path.relative_to(root)}: the values table is stale")
        else:
            readme_path.write_text(fresh)
            print(f"regenerated the values table in {readme_path.relative_to(root)}")

if problems:
    for problem in problems:
        print(f"chart-sync: {problem}", file=sys.stderr)
    if check:
        print("chart-sync: run hack/chart-sync.sh to fix what it can", file=sys.stderr)
    sys.exit(1)
PY
