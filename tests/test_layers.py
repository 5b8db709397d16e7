"""The parts of the package import each other only along the arrows declared in ``descbench/__init__.py``."""

import ast
from pathlib import Path

import descbench
from descbench import ALLOWED, PARTS, SHELL_ONLY, part_of

PACKAGE = Path(descbench.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module an ``import`` or ``from ... import`` names, top-level or inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            # `from descbench import world` names the module descbench.world
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if base == "descbench"]
    return found


def violations() -> list[str]:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        part = part_of(module)
        for line, target in imported_modules(path):
            where = f"{path.relative_to(PACKAGE.parent)}:{line}"
            if target.split(".")[0] in SHELL_ONLY and part != "shell":
                problems.append(f"{where}: {part} module {module} imports the framework {target}")
            if target.startswith("descbench.") and target != "descbench":
                other = part_of(target)
                if other != part and other not in ALLOWED[part]:
                    problems.append(f"{where}: {part} module {module} imports {target} ({other})")
    return problems


def test_no_import_crosses_the_layers():
    assert violations() == []


def test_the_check_finds_a_crossing(tmp_path, monkeypatch):
    """A core module importing the shell, or Lightning, is reported (the check can fail)."""
    bad = PACKAGE / "core" / "marking" / "_layer_probe.py"
    bad.write_text("from descbench.tasks.runner import run_task\nimport lightning\n")
    try:
        found = violations()
    finally:
        bad.unlink()
    assert any(
        "core/marking/_layer_probe.py:1: core module descbench.core.marking._layer_probe imports descbench.tasks.runner"
        in p
        for p in found
    )
    assert any("imports the framework lightning" in p for p in found)


def test_parts_table():
    assert part_of("descbench.core.marking.engine") == "core"
    assert part_of("descbench.descriptions.sources") == "describe"
    assert part_of("descbench.core.description_text") == "core"
    assert part_of("descbench.world.builders") == "world"
    assert part_of("descbench.tasks.rec.module") == "shell"


def test_folders_are_the_parts():
    """Every part but the shell is one folder; the package root holds only the entry points."""
    for prefix, part in PARTS.items():
        if part != "shell":
            assert (PACKAGE.parent / prefix.replace(".", "/")).is_dir(), prefix
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert top == ["__init__", "dashboard", "describe", "eval"]
    assert part_of("descbench.shell.checks") == "shell"
    assert part_of("descbench.report.compare") == "shell"
