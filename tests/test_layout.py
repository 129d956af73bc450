"""The layout stays honest: no import cycle between dlrun's modules, counting imports inside
functions and a package's __init__ as a module of its own; every import inside a function says
why it is lazy; and the command line starts as `dlrun`, `python -m dlrun` and `python -m dlrun.cli`.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from dlrun import __version__

PACKAGE = Path(__file__).resolve().parent.parent / "dlrun"


def modules() -> dict[str, Path]:
    """{dotted module name: file} of every module of dlrun, packages by their __init__.py."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The dlrun modules `name` imports anywhere in its file, relative imports resolved; importing
    a.b.c imports the packages a and a.b as well (unless they enclose the importer itself)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            targets += [source, *(f"{source}.{alias.name}" for alias in node.names)]
    edges = set()
    for target in targets:
        while target and target not in known:  # `from .x import name`: the module x
            target = target.rpartition(".")[0]
        while target:
            if target != name and not name.startswith(target + "."):
                edges.add(target)
            target = target.rpartition(".")[0]
    return edges


def import_cycles() -> list[list[str]]:
    """Strongly connected components of more than one module in dlrun's import graph (Tarjan)."""
    known = modules()
    graph = {name: imported(name, path, known) for name, path in known.items()}
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            components.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return [component for component in components if len(component) > 1]


def test_no_module_imports_itself_through_others():
    assert import_cycles() == []


def test_the_cycle_count_sees_imports_inside_functions(tmp_path, monkeypatch):
    """The count would find the circle train → diagnose → train that function-level imports used
    to hide: two modules of a throwaway package, one importing the other inside a function."""
    package = tmp_path / "dlrun"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from . import b\n")
    (package / "a.py").write_text("def f():\n    from .sub import b  # lazy: test\n")
    (package / "sub" / "b.py").write_text("from .. import a\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
    assert import_cycles() == [["dlrun.a", "dlrun.sub", "dlrun.sub.b"]]


def lazy_imports_without_a_reason() -> list[str]:
    """Imports inside functions with no `# lazy:` comment on their lines or on the comment and
    import lines directly above them."""
    missing = []
    for name, path in modules().items():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text)
        imports = [node for node in ast.walk(tree)
                   if isinstance(node, (ast.Import, ast.ImportFrom))]
        import_lines = {line for node in imports
                        for line in range(node.lineno, node.end_lineno + 1)}
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                seen = lines[node.lineno - 1:node.end_lineno]
                above = node.lineno - 1
                while above >= 1 and (above in import_lines
                                      or lines[above - 1].strip().startswith("#")):
                    seen.append(lines[above - 1])
                    above -= 1
                if not any("# lazy:" in line for line in seen):
                    missing.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: "
                                   f"{lines[node.lineno - 1].strip()}")
    return missing


def test_every_import_inside_a_function_says_why_it_is_lazy():
    assert lazy_imports_without_a_reason() == []


@pytest.mark.parametrize("module", ["dlrun", "dlrun.cli"])
def test_the_command_line_runs_as_a_module(module, tmp_path):
    version = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True,
                             text=True, cwd=tmp_path)
    assert (version.returncode, version.stdout) == (0, f"dlrun {__version__}\n")
    refused = subprocess.run([sys.executable, "-m", module, "train", "--bogus"],
                             capture_output=True, text=True, cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: No such option: --bogus (see ")
