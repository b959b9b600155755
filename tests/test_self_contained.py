"""A clone needs nothing beside it: no code, test, script, benchmark or CI file reads ``../shared`` or any
other path outside the repository (issue 23: the contract test read BambooHR's spec from
``../shared/bamboohr/``, so a fresh clone failed).

A static scan, so it also covers code the suite does not run (bench/, scripts, CI):
- Python (AST): a path built from ``__file__`` (``Path(__file__).parents[3]``, ``.parent``,
  ``os.path.dirname``, ``/``, ``os.path.join``, names assigned from them) that lands outside the
  repository; a string used as a path (``Path(...)``, ``open(...)``, ``/``, ``os.path.join``,
  ``os.environ.get``'s default) that climbs out of it with ``..`` or names a ``shared`` folder;
- every scanned file, Python or not: the text ``../shared`` or ``shared/bamboohr``;
- shell and config files: a ``..`` that climbs above the repository from the file's own folder,
  or any ``..`` in a script other than ``$(dirname "$0")/..``.
A path given at run time (``BAMBOOHR_OPENAPI``, ``DATABASE_URL``) is the user's choice, not scanned.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()
SKIP_DIRS = {
    ".git",
    ".venv",
    "node_modules",
    "__pycache__",
    ".ruff_cache",
    ".mypy_cache",
    ".pytest_cache",
    "data",
    "test-artifacts",
    "static",  # served to browsers: URLs, not files
}
TEXT_NAMES = {"Procfile", "Makefile", "Dockerfile"}
TEXT_SUFFIXES = {".sh", ".toml", ".cfg", ".ini", ".yml", ".yaml", ".txt"}
SCRIPT_DIRS = {"scripts", ".ci", ".github"}

SHARED_TEXT = re.compile(r"\.\./+shared\b|\bshared/bamboohr\b")
CLIMB = re.compile(r"(?<![\w.])\.\.(?:/\.\.)*(?![\w.])")
SCRIPT_ANCHOR = '$(dirname "$0")/'

# Calls whose arguments are paths, and keyword arguments that are.
PATH_CALLS = {
    "Path",
    "PurePath",
    "PosixPath",
    "open",
    "joinpath",
    "join",
    "abspath",
    "realpath",
    "normpath",
    "expanduser",
    "exists",
    "isfile",
    "isdir",
    "chdir",
    "listdir",
    "scandir",
    "glob",
    "rglob",
    "with_name",
    "copy",
    "copyfile",
    "copytree",
}
PATH_KEYWORDS = {"cwd", "file", "filename", "directory"}
ANCHORS = {"__file__"}


def _outside(path: str) -> bool:
    normal = os.path.normpath(path if os.path.isabs(path) else os.path.join(ROOT, path))
    return normal != str(ROOT) and not normal.startswith(str(ROOT) + os.sep)


class _PathScan(ast.NodeVisitor):
    """Evaluates ``__file__``-based path expressions lexically, as if the file sat at ``rel`` under ROOT."""

    def __init__(self, rel: str) -> None:
        self.file = str(ROOT / rel)
        self.names: dict[str, str] = {}
        self.found: list[tuple[int, str]] = []

    def value(self, node: ast.AST) -> str | None:
        """The path ``node`` evaluates to, when it is built from ``__file__``; else None."""
        if isinstance(node, ast.Name):
            return self.file if node.id in ANCHORS else self.names.get(node.id)
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            base = self.value(node.value)
            return os.path.dirname(os.path.normpath(base)) if base else None
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "parents":
            base = self.value(node.value.value)
            if base and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int):
                return os.path.normpath(os.path.join(base, *[".."] * (node.slice.value + 1)))
            return None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            base, part = self.value(node.left), _constant(node.right)
            return os.path.normpath(os.path.join(base, part)) if base and part is not None else None
        if isinstance(node, ast.Call):
            name = _call_name(node)
            receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
            if name in {"resolve", "absolute"} and receiver is not None:
                return self.value(receiver)
            if name in {"Path", "PurePath", "PosixPath", "abspath", "realpath", "normpath"} and node.args:
                return self.value(node.args[0])
            if name == "dirname" and node.args:
                base = self.value(node.args[0])
                return os.path.dirname(os.path.normpath(base)) if base else None
            if (name == "joinpath" and receiver is not None) or (name == "join" and node.args):
                first, rest = (receiver, node.args) if name == "joinpath" else (node.args[0], node.args[1:])
                base = self.value(first) if first is not None else None
                parts = [_constant(arg) for arg in rest]
                if base and all(part is not None for part in parts):
                    return os.path.normpath(os.path.join(base, *[p for p in parts if p is not None]))
        return None

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        path = self.value(node.value)
        for target in node.targets:
            if isinstance(target, ast.Name) and path:
                self.names[target.id] = path

    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.expr):
            path = self.value(node)
            if path and _outside(path):
                self.found.append((node.lineno, f"{ast.unparse(node)} is {path}, outside the repository"))
                return  # one finding per expression, not one per sub-expression
        for text, where in _path_strings(node):
            if _climbs_out(text) or "shared" in PurePosixPath(text).parts:
                self.found.append((where.lineno, f"{text!r} used as a path"))
        super().generic_visit(node)


def _constant(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _path_strings(node: ast.AST) -> list[tuple[str, ast.expr]]:
    """String constants that ``node`` uses directly as paths."""
    candidates: list[ast.expr] = []
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        candidates = [node.left, node.right]
    elif isinstance(node, ast.Call):
        name = _call_name(node)
        if name in PATH_CALLS:
            candidates = list(node.args)
        elif name in {"get", "getenv"} and len(node.args) == 2:  # os.environ.get("X", default)
            candidates = [node.args[1]]
        candidates += [kw.value for kw in node.keywords if kw.arg in PATH_KEYWORDS]
    return [(text, c) for c in candidates if (text := _constant(c)) is not None]


def _climbs_out(text: str) -> bool:
    return ".." in PurePosixPath(text).parts and _outside(text)


def scan_python(rel: str, source: str) -> list[str]:
    scan = _PathScan(rel)
    scan.visit(ast.parse(source))
    found = [f"{rel}:{line}: {what}" for line, what in scan.found]
    return found + _scan_shared_text(rel, source)


def scan_text(rel: str, text: str) -> list[str]:
    found = _scan_shared_text(rel, text)
    depth = len(PurePosixPath(rel).parent.parts)
    script = PurePosixPath(rel).parts[0] in SCRIPT_DIRS or rel.endswith(".sh") or rel in TEXT_NAMES
    for number, line in enumerate(text.splitlines(), 1):
        for match in CLIMB.finditer(line):
            levels = match.group().count("..")
            anchored = line[: match.start()].endswith(SCRIPT_ANCHOR)
            if levels > depth or (script and not anchored):
                found.append(f"{rel}:{number}: {line.strip()!r} climbs {levels} level(s) up")
    return found


def _scan_shared_text(rel: str, text: str) -> list[str]:
    return [
        f"{rel}:{text.count(chr(10), 0, m.start()) + 1}: {m.group()!r} names the folder beside the checkout"
        for m in SHARED_TEXT.finditer(text)
    ]


def project_files() -> list[str]:
    found: list[str] = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        for name in files:
            rel = (Path(folder) / name).relative_to(ROOT).as_posix()
            top = PurePosixPath(rel).parts[0]
            if rel == THIS or not (
                name.endswith(".py")
                or name in TEXT_NAMES
                or Path(name).suffix in TEXT_SUFFIXES
                or (top in SCRIPT_DIRS and "." not in name)
            ):
                continue
            found.append(rel)
    return sorted(found)


def scan(rel: str, text: str) -> list[str]:
    return scan_python(rel, text) if rel.endswith(".py") else scan_text(rel, text)


def test_nothing_reads_outside_the_repository() -> None:
    files = project_files()
    # The scan must see what matters, or it passes by finding nothing.
    for expected in (
        "tests/connectors/http/test_bamboohr_contract.py",
        "sandbox/bamboohr/app.py",
        "scripts/test",
        ".ci/run",
    ):
        assert expected in files
    problems = [p for rel in files for p in scan(rel, (ROOT / rel).read_text(encoding="utf-8", errors="replace"))]
    assert not problems, "\n".join(problems)


ORIGINAL_BUG = (
    'SPEC = Path(os.environ.get("BAMBOOHR_OPENAPI", '
    'Path(__file__).resolve().parents[3] / "shared/bamboohr/openapi.yaml"))\n'
)


@pytest.mark.parametrize(
    ("rel", "source"),
    [
        ("tests/connectors/http/test_bamboohr_contract.py", ORIGINAL_BUG),
        ("tests/connectors/test_x.py", 'SPEC = Path(__file__).parents[2] / "shared" / "spec.yaml"\n'),
        ("sandbox/bamboohr/x.py", 'SPEC = Path(__file__).parents[3] / "spec.yaml"\n'),
        ("sandbox/bamboohr/x.py", 'SPEC = open("../shared/bamboohr/openapi.yaml")\n'),
        ("sandbox/bamboohr/x.py", 'SPEC = Path("../bamboohr-specs/openapi.yaml")\n'),
        ("tests/connectors/test_x.py", 'SPEC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "s.yaml")\n'),
        ("bench/x.py", 'ROOT = Path(__file__).resolve().parent.parent\nSPEC = ROOT.parent / "spec.yaml"\n'),
        ("bench/x.py", 'SPEC = Path(__file__).resolve().parent / "../../spec.yaml"\n'),
        ("config/x.py", 'SPEC = os.environ.get("BAMBOOHR_OPENAPI", "/work/shared/openapi.yaml")\n'),
        ("tests/x.py", "# the spec is in ../shared\n"),
    ],
)
def test_the_scan_catches_a_read_outside(rel: str, source: str) -> None:
    assert scan(rel, source), source


@pytest.mark.parametrize(
    ("rel", "text"),
    [
        ("scripts/test", 'cd "$(dirname "$0")/.."\ncp ../shared/bamboohr/openapi.yaml /tmp/\n'),
        ("scripts/test", 'cd "$(dirname "$0")/../.."\n'),
        ("scripts/test", 'cd "$(dirname "$0")/.."\npython x.py --spec ../specs/openapi.yaml\n'),
        (".ci/run", "BAMBOOHR_OPENAPI=../shared/openapi.yaml ./scripts/test\n"),
        ("connectors/ruff.toml", 'extend = "../../pyproject.toml"\n'),
        ("Procfile", "web: daphne --root ../elsewhere config.asgi:application\n"),
    ],
)
def test_the_scan_catches_a_script_reading_outside(rel: str, text: str) -> None:
    assert scan(rel, text), text


@pytest.mark.parametrize(
    ("rel", "source"),
    [
        ("tests/sandbox/test_x.py", "REPO = Path(__file__).resolve().parents[2]\nX = REPO / 'sandbox'\n"),
        ("tests/x.py", "ROOT = Path(__file__).resolve().parent.parent\n"),
        ("tests/connectors/test_x.py", 'connector.get_employee("../meta/fields")\n'),  # a URL attack, not a file
        ("tests/resilience/test_x.py", 'PAYLOAD = \'{"integration": "../../etc"}\'\n'),
        ("connectors/ruff.toml", 'extend = "../pyproject.toml"\n'),
        (".ci/run", 'cd "$(dirname "$0")/.."\n'),
        ("scripts/run", 'echo "installing redis-server..."\n'),
    ],
)
def test_the_scan_leaves_paths_inside_the_repository_alone(rel: str, source: str) -> None:
    assert not scan(rel, source)
