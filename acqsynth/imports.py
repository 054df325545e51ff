"""The project files a stage runs, read from the import graph: what dvc.yaml lists as a stage's code deps and what
the Prefect tasks' cache keys hash, so that editing any module a stage imports reruns it.

Static, from the source (nothing is imported): a stage's function in `acqsynth/stages.py`, the functions of that
module it calls (by name, transitively), the imports inside them and the top-level imports whose names they use;
then, for each project module reached, every import it makes anywhere (top level or inside a function: heavy imports are
deferred into functions, and they run all the same), transitively. Importing a module runs its packages'
`__init__.py`, so those count too.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "acqsynth"
ROOT = Path(__file__).resolve().parent.parent  # the checkout: paths are relative to it, as in dvc.yaml


def module_path(module: str) -> Path | None:
    """The file of a project module (a package's `__init__.py`), None if it is not one of ours."""
    if module != PACKAGE and not module.startswith(PACKAGE + "."):
        return None
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _walk(node: ast.AST) -> Iterable[ast.AST]:
    """ast.walk, without the bodies of `if TYPE_CHECKING:`, which never run."""
    pending = [node]
    while pending:
        current = pending.pop()
        yield current
        if isinstance(current, ast.If) and ast.unparse(current.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            pending.extend(current.orelse)
            continue
        pending.extend(ast.iter_child_nodes(current))


def _imported(nodes: Iterable[ast.AST], importer: str) -> set[str]:
    """The modules the import statements among nodes (and beneath them) name: for `from a import b`, `a` and,
    where `a.b` is a module, `a.b`. Relative imports are resolved against importer."""
    found: set[str] = set()
    for node in nodes:
        for child in _walk(node):
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    package = importer.split(".")[: -child.level]
                    base = ".".join([*package, base] if base else package)
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in child.names)
    return found


def _with_packages(module: str) -> set[str]:
    """module and the packages above it, whose `__init__.py` importing it runs."""
    parts = module.split(".")
    return {".".join(parts[:index]) for index in range(1, len(parts) + 1)}


def module_closure(modules: Iterable[str]) -> set[Path]:
    """The files of the project modules among modules and of everything they import, transitively."""
    files: set[Path] = set()
    pending = [name for module in modules for name in _with_packages(module)]
    while pending:
        path = module_path(pending.pop())
        if path is None or path in files:
            continue
        files.add(path)
        importer = _module_name(path) + (".__init__" if path.name == "__init__.py" else "")
        pending.extend(name for module in _imported([_tree(path)], importer) for name in _with_packages(module))
    return files


def _bound(alias: ast.alias) -> str:
    """The name an import binds: `import a.b` binds `a`, `from m import x as y` binds `y`."""
    return alias.asname or alias.name.split(".")[0]


def _names(node: ast.AST) -> set[str]:
    return {child.id for child in ast.walk(node) if isinstance(child, ast.Name)}


def _local(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """The names a function binds itself, by its arguments or its own imports, which shadow the module's: a
    `from ..backend import generate` inside `build_models` is not the module's function `generate`."""
    arguments = function.args
    bound = {arg.arg for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs,
                                 *filter(None, (arguments.vararg, arguments.kwarg))]}
    return bound | {_bound(alias) for node in ast.walk(function) if isinstance(node, (ast.Import, ast.ImportFrom))
                    for alias in node.names}


def function_closure(path: Path, name: str) -> set[Path]:
    """The files that running the top-level function `name` of the module at path may execute: that module, the
    imports inside `name` and the module's functions it calls, and those of the module's top-level imports whose
    names they, or the module's own top-level statements, use; each with its closure.

    A top-level import whose names the stage never uses is left out: importing it runs only its definitions, which
    cannot change what the stage computes (the project's modules define at import and act when called). This is
    what lets a stage depend on the quality suites it checks and on no other."""
    tree = _tree(path)
    functions = {node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if name not in functions:
        raise ValueError(f"{path}: no top-level function {name!r}")
    reached, pending = set(), [name]
    while pending:
        current = pending.pop()
        if current in reached:
            continue
        reached.add(current)
        pending.extend(name for name in _names(functions[current]) - _local(functions[current]) if name in functions)
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    statements = [node for node in tree.body if node not in top_level and node not in functions.values()]
    used = set().union(*(_names(node) for node in statements),
                       *(_names(functions[function]) - _local(functions[function]) for function in reached))
    kept = []
    for node in top_level:
        names = [alias for alias in node.names if _bound(alias) in used]
        if names:
            kept.append(ast.Import(names=names) if isinstance(node, ast.Import)
                        else ast.ImportFrom(module=node.module, names=names, level=node.level))
    module = _module_name(path)
    imported = _imported([*kept, *(functions[function] for function in reached)], module)
    return {path} | module_closure(imported)


def relative(paths: Iterable[Path]) -> list[str]:
    """Sorted paths relative to the checkout, as dvc.yaml writes them."""
    return sorted(str(path.relative_to(ROOT)) for path in paths)


def compact(paths: Iterable[str]) -> list[str]:
    """paths (files relative to the checkout), with each directory all of whose Python files are listed written
    as the directory instead: dvc.yaml stays readable, and DVC hashes a directory's files all the same."""
    listed = set(paths)
    kept = set(listed)
    directories = sorted({str(Path(path).parent) for path in listed}, key=lambda d: d.count("/"))
    for directory in directories:
        if directory in (".", PACKAGE):
            continue
        inside = {str(path.relative_to(ROOT)) for path in (ROOT / directory).rglob("*.py")}
        if inside and inside <= listed:
            kept = {path for path in kept if not path.startswith(directory + "/")} | {directory}
    # A directory swallowed by a listed parent directory goes too.
    return sorted(path for path in kept
                  if not any(path != other and path.startswith(other + "/") for other in kept))
