"""The prepared splits: the test stream is apart from the others, stratified by difficulty, and its size shifts
nothing else."""

import json
from collections import Counter

import pytest
from pydantic import ValidationError

from acqsynth import stages
from acqsynth.config import PrepareConfig, merge, profile_params, resolve
from acqsynth.domains.math.problems import MathDifficulty, generate_word_problems
from acqsynth.domains.math.records import gsm8k_solution


def _config(**prepare):
    values = profile_params("smoke")
    return resolve(merge(values, {"prepare": prepare}))


def _kinds(domain, frame):
    return Counter(stages.difficulty_of(domain, q, r, s) for q, r, s in
                   zip(frame["question"], frame["reasoning"], frame["skill"]))


@pytest.mark.parametrize("domain", ["math", "mcq", "code"])
def test_test_split_is_disjoint_stratified_and_shifts_no_other_split(domain):
    small = stages._domain_splits(_config(n_test={"math": 12, "mcq": 12, "code": 12}), domain)
    large = stages._domain_splits(_config(n_test={"math": 40, "mcq": 40, "code": 40}), domain)
    for name in ("seed", "pool", "pretrain", "eval"):
        assert large[name].equals(small[name])
    assert len(small["test"]) == 12 and len(large["test"]) == 40
    assert large["test"]["id"].is_unique and large["test"]["id"].str.startswith(f"{domain}/test-").all()
    others = {q for name in ("seed", "pool", "pretrain", "eval") for q in large[name]["question"]}
    assert not others & set(large["test"]["question"])
    counts = _kinds(domain, large["test"])
    assert max(counts.values()) - min(counts.values()) <= 1, counts


def test_math_test_split_balances_the_steps():
    config = resolve(merge(profile_params("tiny"), {"prepare": {"n_test": {"math": 300, "mcq": 1, "code": 1}}}))
    test = stages._domain_splits(config, "math")["test"]
    assert _kinds("math", test) == {"1 steps": 150, "2 steps": 150}


@pytest.fixture
def gsm8k_dir(tmp_path):
    """A GSM8K-format directory (train.jsonl, test.jsonl) of procedural problems: 300 train, 80 test rows."""
    problems = generate_word_problems(380, MathDifficulty(max_steps=2), seed=11)
    for name, rows in (("train", problems[:300]), ("test", problems[300:])):
        (tmp_path / f"{name}.jsonl").write_text("".join(
            json.dumps({"question": p.question, "answer": gsm8k_solution(p)}) + "\n" for p in rows))
    return tmp_path


def test_no_test_split_and_too_large_a_test_split(gsm8k_dir):
    assert stages._domain_splits(_config(n_test={"math": 0, "mcq": 0, "code": 0}), "math")["test"].empty
    sources = {"math": str(gsm8k_dir), "mcq": "procedural", "code": "procedural"}
    with pytest.raises(ValueError, match=r"gave 64 test examples that no other split holds; "
                                         r"prepare.n_test.math = 100 are needed"):
        stages._domain_splits(_config(sources=sources, n_test={"math": 100, "mcq": 1, "code": 1}), "math")


def test_real_test_split_is_the_source_test_rows_after_eval(gsm8k_dir):
    config = _config(sources={"math": str(gsm8k_dir), "mcq": "procedural", "code": "procedural"},
                     n_test={"math": 50, "mcq": 1, "code": 1})
    splits = stages._domain_splits(config, "math")
    assert len(splits["test"]) == 50
    assert not set(splits["test"]["id"]) & set(splits["eval"]["id"])
    assert not set(splits["test"]["question"]) & set(splits["eval"]["question"])
    test_rows = [json.loads(line)["question"] for line in (gsm8k_dir / "test.jsonl").read_text().splitlines()]
    assert set(splits["test"]["question"]) <= set(test_rows[16:])  # after smoke's 16 eval rows


def test_test_sizes_name_every_domain():
    with pytest.raises(ValidationError, match="missing \\['code'\\]"):
        PrepareConfig(n_test={"math": 1, "mcq": 1})
    with pytest.raises(ValidationError, match="expected sizes >= 0"):
        PrepareConfig(n_test={"math": 1, "mcq": 1, "code": -1})
