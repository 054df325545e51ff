"""The import graph that dvc.yaml's code deps and the task cache keys come from, and the one domain interface."""

from pathlib import Path

import pytest

from acqsynth import imports, stages
from acqsynth.domains import DOMAIN_NAMES, DOMAINS, domain_module


def _package(tmp_path: Path, files: dict[str, str], monkeypatch) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(imports, "ROOT", tmp_path)
    imports._tree.cache_clear()
    return tmp_path


def test_a_function_runs_its_imports_its_callees_imports_and_theirs(tmp_path, monkeypatch):
    root = _package(tmp_path, {
        "acqsynth/__init__.py": "",
        "acqsynth/stages.py": "from acqsynth import top\n\ndef a():\n    top.f()\n    helper()\n\ndef helper():\n"
                              "    from acqsynth.sub import leaf\n\ndef b():\n    import acqsynth.other\n",
        "acqsynth/top.py": "",
        "acqsynth/sub/__init__.py": "from . import near\n",
        "acqsynth/sub/near.py": "",
        "acqsynth/sub/leaf.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import acqsynth.other\n"
                                "def f():\n    from ..far import x\n",
        "acqsynth/far.py": "",
        "acqsynth/other.py": "",
    }, monkeypatch)
    try:
        files = imports.relative(imports.function_closure(root / "acqsynth/stages.py", "a"))
        # `other` only under TYPE_CHECKING and in b, which a does not call; the package __init__ files run too
        assert files == ["acqsynth/__init__.py", "acqsynth/far.py", "acqsynth/stages.py", "acqsynth/sub/__init__.py",
                         "acqsynth/sub/leaf.py", "acqsynth/sub/near.py", "acqsynth/top.py"]
        assert imports.compact(files) == ["acqsynth/__init__.py", "acqsynth/far.py", "acqsynth/stages.py",
                                          "acqsynth/sub", "acqsynth/top.py"]
    finally:
        imports._tree.cache_clear()


def test_the_stale_deps_measured_before_are_among_the_stages_code():
    code = {stage.name: stage.code for stage in stages.PIPELINE}
    for stage in ("evaluate", "finetune"):
        assert "acqsynth/models/loading.py" in code[stage]
    assert "acqsynth/resume.py" in code["finetune"]
    for name, stage in code.items():
        assert {"acqsynth/artifacts.py", "acqsynth/config.py"} <= set(stage)
        # every stage but the report (which reads only metrics) gates what it reads or writes
        assert ("acqsynth/quality/gates.py" in stage) == (name != "report"), name
    assert "acqsynth/finetune.py" not in code["evaluate"]


SPLIT_READERS = {"prepare", "build_models", "seed_centroids", "policy_update", "generate", "verify",
                 "acquisition_score", "select", "evaluate"}


@pytest.mark.parametrize(("suite", "guarded"), [
    ("examples", SPLIT_READERS),  # prepare writes the splits; the others check them as they read them
    ("rollouts", {"policy_update"}),
    ("generated", {"generate", "verify", "acquisition_score", "select"}),  # verified and scored rows include its rows
    ("verified", {"verify", "acquisition_score", "select"}),  # scored rows include the verified rows' checks
    ("scored", {"acquisition_score", "select"}),
    ("selected", {"select", "finetune"}),
    ("metrics", {"build_models", "evaluate"}),
])
def test_a_suite_is_code_of_exactly_the_stages_it_guards(suite, guarded):
    """So editing a suite's expectations reruns those stages and no other, in `dvc repro` (dvc.yaml's deps) and in
    `acqsynth run` (the tasks' cache keys), which both take a stage's code from here."""
    path = f"acqsynth/quality/suites/{suite}.py"
    assert {stage.name for stage in stages.PIPELINE if path in stage.code} == guarded


def test_a_name_a_function_binds_itself_is_not_the_modules_function(tmp_path, monkeypatch):
    root = _package(tmp_path, {
        "acqsynth/__init__.py": "",
        "acqsynth/stages.py": "from acqsynth import used, unused\n\nX = used.CONSTANT\n\n"
                              "def a(helper):\n    from acqsynth.backend import b\n    b()\n    helper()\n\n"
                              "def b():\n    import acqsynth.other\n\ndef helper():\n    unused.f()\n",
        "acqsynth/used.py": "", "acqsynth/unused.py": "", "acqsynth/backend.py": "", "acqsynth/other.py": "",
    }, monkeypatch)
    try:
        files = imports.relative(imports.function_closure(root / "acqsynth/stages.py", "a"))
        # b and helper are a's own names (an import, an argument), not the module's functions; `used` is used by a
        # top-level statement, `unused` only by helper
        assert files == ["acqsynth/__init__.py", "acqsynth/backend.py", "acqsynth/stages.py", "acqsynth/used.py"]
    finally:
        imports._tree.cache_clear()


def test_every_domain_has_the_one_interface():
    names = ("NAME", "GENERATOR_INSTRUCTION", "procedural_examples", "load_examples", "extract_answer",
             "answers_match", "difficulty", "verify", "grade")
    assert DOMAIN_NAMES == tuple(module.NAME for module in DOMAINS) == ("math", "mcq", "code")
    for name in DOMAIN_NAMES:
        assert all(hasattr(domain_module(name), attribute) for attribute in names), name
