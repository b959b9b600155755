"""Mutation testing of the safety-critical modules with mutmut 3 (issue 26); run it as scripts/mutation.

Each module listed in mutation/modules.toml is mutated alone, in a snapshot of the working tree under
data/mutation/<module>/ (mutmut writes its mutants/ there, never into the shared tree), and tested with
its own tests only. The kill rate counts every mutant except those that mutation/equivalent.toml
explains as equivalent; an explanation names the changed line it is about, so it stops counting (and
the script says so) once the code under it changes. Exit status 1 when a module misses its target.

    scripts/mutation                       every module in modules.toml
    scripts/mutation connectors/circuit.py integrations/tools/sql_guard.py
    scripts/mutation --changed origin/main modules changed since a revision (and in the working tree)
    scripts/mutation --list                the modules and their tests, nothing run
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "mutation" / "modules.toml"
EQUIVALENTS = ROOT / "mutation" / "equivalent.toml"
MANUAL = ROOT / "mutation" / "manual.toml"
MUTMUT = ROOT / ".venv" / "bin" / "mutmut"
KILLED = {"killed", "timeout", "caught by type check"}
# Python packages the tests import: copied into mutants/ so the mutated module is the one imported.
PACKAGES = ["accounts", "config", "connectors", "integrations", "sandbox"]


@dataclass
class Module:
    path: str
    tests: list[str]
    target: float
    servers: bool
    functions: list[str]  # "Class.method" or "function"; empty: every function of the module
    deselect: list[str]  # test node ids left out of the mutation runs (load-sensitive, see modules.toml)

    @property
    def name(self) -> str:
        return self.path + (" (" + ", ".join(self.functions) + ")" if self.functions else "")

    @property
    def patterns(self) -> list[str]:
        """mutmut's names of this entry's mutants (``pkg.mod.xǁClassǁmethod__mutmut_3``), as globs."""
        dotted = self.path.removesuffix(".py").replace("/", ".")
        return [
            f"{dotted}.xǁ{'ǁ'.join(f.split('.'))}__mutmut_*" if "." in f else f"{dotted}.x_{f}__mutmut_*"
            for f in self.functions
        ]


@dataclass
class Equivalent:
    module: str
    mutant: str
    line: str  # the line as the mutant changes it, or "- <line>" for a line the mutant deletes
    reason: str
    untestable: bool  # not equivalent, but only another server than this machine's could kill it


@dataclass
class Outcome:
    module: Module
    statuses: dict[str, str] = field(default_factory=dict)
    equivalent: dict[str, str] = field(default_factory=dict)
    untestable: dict[str, str] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""

    @property
    def counted(self) -> dict[str, str]:
        """Every mutant but the equivalent ones and the survivors only another server could kill."""
        left_out = self.equivalent.keys() | {n for n in self.untestable if self.statuses[n] not in KILLED}
        return {name: status for name, status in self.statuses.items() if name not in left_out}

    @property
    def raw_rate(self) -> float:
        """The kill rate with the untestable survivors counted as survivors."""
        total = len(self.statuses) - len(self.equivalent)
        return 100.0 * self.killed / total if total else 100.0

    @property
    def killed(self) -> int:
        return sum(status in KILLED for status in self.counted.values())

    @property
    def survivors(self) -> list[str]:
        return sorted(name for name, status in self.counted.items() if status not in KILLED)

    @property
    def rate(self) -> float:
        return 100.0 * self.killed / len(self.counted) if self.counted else 100.0

    @property
    def ok(self) -> bool:
        return not self.error and self.rate >= self.module.target


def load_modules() -> list[Module]:
    data = tomllib.loads(CONFIG.read_text())
    return [
        Module(
            m["path"],
            list(m["tests"]),
            float(m.get("target", 90)),
            bool(m.get("servers", False)),
            list(m.get("functions", [])),
            list(m.get("deselect", [])),
        )
        for m in data["module"]
    ]


def load_equivalents() -> list[Equivalent]:
    if not EQUIVALENTS.exists():
        return []
    data = tomllib.loads(EQUIVALENTS.read_text())
    return [
        Equivalent(e["module"], e["mutant"], e["line"], e["reason"], e.get("kind", "equivalent") == "untestable")
        for e in data.get("equivalent", [])
    ]


@dataclass
class ManualMutant:
    name: str
    module: str
    find: str
    replace: str
    tests: list[str]


def load_manual() -> list[ManualMutant]:
    if not MANUAL.exists():
        return []
    data = tomllib.loads(MANUAL.read_text())
    return [ManualMutant(m["name"], m["module"], m["find"], m["replace"], list(m["tests"])) for m in data["mutant"]]


def run_manual(mutant: ManualMutant, env: dict[str, str]) -> str:
    """Apply a hand-written mutant to its own snapshot and run its tests: killed, survived or stale."""
    work = ROOT / "data" / "mutation" / f"manual-{mutant.name}"
    snapshot(work)
    source = work / mutant.module
    text = source.read_text()
    if text.count(mutant.find) != 1:
        return "stale (its `find` text is not in the module exactly once)"
    source.write_text(text.replace(mutant.find, mutant.replace))
    with (work / "pytest.log").open("w") as out:
        done = subprocess.run(
            [
                str(ROOT / ".venv" / "bin" / "python"),
                "-m",
                "pytest",
                *mutant.tests,
                "-x",
                "-q",
                "-p",
                "no:cacheprovider",
            ],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return {0: "survived", 1: "killed"}.get(done.returncode, f"error (pytest exit {done.returncode})")


def changed_since(rev: str) -> set[str]:
    committed = subprocess.run(
        ["git", "diff", "--name-only", f"{rev}...HEAD"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    uncommitted = subprocess.run(
        ["git", "diff", "--name-only", "HEAD"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()
    return set(committed) | set(uncommitted)


def snapshot(work: Path) -> None:
    """The working tree as it is now (tracked and untracked, minus what .gitignore leaves out)."""
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "rsync",
            "-a",
            "--delete",
            "--exclude=/.git",
            "--exclude=/mutants",
            "--exclude=/mutation-setup.done",
            "--filter=:- .gitignore",
            f"{ROOT}/",
            f"{work}/",
        ],
        check=True,
    )


def write_mutmut_config(work: Path, module: Module) -> None:
    """mutmut 3 reads [tool.mutmut] from pyproject.toml: the snapshot's copy gets this module's section."""
    others = sorted(p.name for p in work.iterdir() if p.name not in PACKAGES and p.name not in {"mutants", "tests"})

    def toml_list(items: list[str]) -> str:
        return "[" + ", ".join(f'"{item}"' for item in items) + "]"

    pyproject = work / "pyproject.toml"
    text = pyproject.read_text()
    text = text.split("\n[tool.mutmut]\n")[0]
    text += (
        "\n[tool.mutmut]\n"
        f"source_paths = {toml_list(PACKAGES)}\n"
        f"only_mutate = {toml_list([module.path])}\n"
        f"also_copy = {toml_list(others)}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(module.tests)}\n"
        f"pytest_add_cli_args = {toml_list(['-p', 'no:cacheprovider', '-q', '-x', '--timeout=120'] + [f'--deselect={d}' for d in module.deselect])}\n"
    )
    pyproject.write_text(text)


def run_module(
    module: Module, equivalents: list[Equivalent], manual: list[ManualMutant], *, children: int, fresh: bool
) -> Outcome:
    outcome = Outcome(module)
    work = ROOT / "data" / "mutation" / re.sub(r"[^A-Za-z0-9]+", "-", module.name.removesuffix(".py")).strip("-")
    if fresh and work.exists():
        shutil.rmtree(work)
    snapshot(work)
    write_mutmut_config(work, module)
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", f"sqlite:///{work}/data/test-hub.sqlite3")
    env.setdefault("HUB_TEST_BACKEND", "sqlite")
    env.setdefault("HUB_TEST_DB_NAME", "mutation")
    (work / "data").mkdir(exist_ok=True)
    earlier_results = (work / "mutants").exists()
    started = time.monotonic()
    log = work / "mutmut.log"
    run = [str(MUTMUT), "run", "--max-children", str(children)]
    with log.open("w") as out:
        # Named mutants (an entry's functions) are always run again; the whole module only where changed.
        done = subprocess.run(run + module.patterns, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
        outcome.statuses = _statuses(work, env, module.patterns)
        survivors = sorted(name for name, status in outcome.statuses.items() if status not in KILLED)
        if done.returncode == 0 and earlier_results and survivors and not module.patterns:
            # mutmut keeps a survivor's verdict until its function changes; the tests may have changed
            # since (that is how a survivor gets killed), so every survivor is tried again.
            done = subprocess.run(run + survivors, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
            outcome.statuses = _statuses(work, env, module.patterns)
    for mutant in manual:
        status = run_manual(mutant, env)
        if status.startswith("stale"):
            outcome.stale.append(f"mutation/manual.toml {mutant.name}: {status}")
        else:
            outcome.statuses[f"manual:{mutant.name}"] = status
    outcome.seconds = time.monotonic() - started
    if done.returncode != 0:
        outcome.error = f"mutmut run failed (exit {done.returncode}); see {log.relative_to(ROOT)}"
        return outcome
    for equivalent in equivalents:
        if equivalent.module != module.path:
            continue
        if equivalent.mutant not in outcome.statuses:
            outcome.stale.append(f"mutation/equivalent.toml {equivalent.mutant}: no such mutant any more")
            continue
        diff = subprocess.run(
            [str(MUTMUT), "show", equivalent.mutant], cwd=work, env=env, capture_output=True, text=True
        ).stdout
        added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
        removed = [
            line[1:].strip() for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")
        ]
        deleted = equivalent.line.startswith("- ") and not added and equivalent.line[2:].strip() in removed
        if deleted or equivalent.line.strip() in added:
            kept = outcome.untestable if equivalent.untestable else outcome.equivalent
            kept[equivalent.mutant] = equivalent.reason
        else:
            outcome.stale.append(
                f"mutation/equivalent.toml {equivalent.mutant}: its mutated line is no longer {equivalent.line.strip()!r}"
            )
    return outcome


def _statuses(work: Path, env: dict[str, str], patterns: list[str]) -> dict[str, str]:
    listing = subprocess.run(
        [str(MUTMUT), "results", "--all", "true"], cwd=work, env=env, capture_output=True, text=True
    ).stdout
    statuses = {}
    for line in listing.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name and (not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)):
            statuses[name] = status
    return statuses


def report(outcomes: list[Outcome]) -> None:
    print()
    print(
        f"{'module':<44} {'mutants':>7} {'killed':>6} {'equiv':>5} {'untest':>6} {'surv':>4} {'rate':>7} "
        f"{'target':>6} {'(all)':>7}  time"
    )
    for o in outcomes:
        label = o.module.name
        if len(label) > 44:
            print(label)
            label = ""
        if o.error:
            print(f"{label:<44} ERROR: {o.error}")
            continue
        untested = sum(o.statuses[n] not in KILLED for n in o.untestable)
        print(
            f"{label:<44} {len(o.statuses):>7} {o.killed:>6} {len(o.equivalent):>5} {untested:>6} "
            f"{len(o.survivors):>4} {o.rate:>6.1f}% {o.module.target:>5.0f}% {o.raw_rate:>6.1f}%  "
            f"{o.seconds:.0f}s  {'ok' if o.ok else 'BELOW TARGET'}"
        )
    print("rate: killed / (mutants - equivalent - untestable here); (all): the untestable ones counted as survivors")
    for o in outcomes:
        for stale in o.stale:
            print(f"  stale entry ({o.module.path}) {stale}")
        for name, reason in sorted(o.untestable.items()):
            if o.statuses[name] not in KILLED:
                print(f"  untestable here: {name}: {reason}")
        for name in o.survivors:
            print(f"  {o.counted[name]}: {name}")
    if any(o.survivors for o in outcomes):
        print("  (see one: cd data/mutation/<module> && ../../../.venv/bin/mutmut show <name>)")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/mutation", description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="module paths from mutation/modules.toml (default: all)")
    parser.add_argument("--changed", metavar="REV", help="only the listed modules changed since REV")
    parser.add_argument("--list", action="store_true", help="print the modules and their tests")
    parser.add_argument("--fresh", action="store_true", help="forget earlier results (default: reuse them)")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args(argv)

    modules = load_modules()
    if args.list:
        for m in modules:
            print(f"{m.name}  (target {m.target:.0f}%)  tests: {' '.join(m.tests)}")
        return 0
    if args.modules:
        unknown = set(args.modules) - {m.path for m in modules}
        if unknown:
            parser.error(f"not in mutation/modules.toml: {', '.join(sorted(unknown))}")
        modules = [m for m in modules if m.path in args.modules]
    if args.changed:
        changed = changed_since(args.changed)
        modules = [m for m in modules if m.path in changed or any(t in changed for t in m.tests)]
        if not modules:
            print(f"no listed module or its tests changed since {args.changed}")
            return 0
    if not shutil.which("rsync"):
        print("scripts/mutation needs rsync", file=sys.stderr)
        return 2

    equivalents = load_equivalents()
    manual = load_manual()
    started = time.monotonic()
    outcomes = []
    for module in modules:
        print(f"=== {module.name}: mutmut with {' '.join(module.tests)}", flush=True)
        # hand-written mutants count with the first entry of their module
        mine = [
            m for m in manual if m.module == module.path and module is next(e for e in modules if e.path == m.module)
        ]
        outcomes.append(run_module(module, equivalents, mine, children=args.max_children, fresh=args.fresh))
    report(outcomes)
    print(f"\ntotal {time.monotonic() - started:.0f}s")
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
