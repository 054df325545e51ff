import json
import re
from collections import Counter

import pytest

from acqsynth.domains import mcq
from acqsynth.domains.mcq import (
    KNOWLEDGE_BASE,
    SKILLS,
    STEPS,
    answers_match,
    chosen_option,
    difficulty,
    extract_answer,
    format_question,
    kb_answer,
    kb_judgement,
    load_examples,
    parse_key,
    parse_options,
    procedural_examples,
)
from acqsynth.domains.sample import Example, Verdict, format_sample, parse_sample, student_completion
from acqsynth.config import resolve
from acqsynth.verify.mcq import self_consistency, verify_batch, verify_mcq_sample
from acqsynth.verify.samples import verify_batch as verify_samples
from acqsynth.verify.samples import verify_rules
from tests.conftest import SHARED_DATASETS

PUBMEDQA = SHARED_DATASETS / "pubmedqa"
EXAMPLES = procedural_examples(2000, seed=3)

# --- the knowledge base ---------------------------------------------------------------------------------------


def test_knowledge_base_is_a_function_of_the_class():
    drugs = [drug for cls in KNOWLEDGE_BASE for drug in cls.drugs]
    assert (len(KNOWLEDGE_BASE), len(drugs)) == (16, 64)
    # Interactions pair the classes: each class interacts with one other, which interacts with it.
    by_name = {cls.name: cls for cls in KNOWLEDGE_BASE}
    assert all(by_name[by_name[cls.interacts_with].interacts_with] is cls and by_name[cls.interacts_with] is not cls
               for cls in KNOWLEDGE_BASE)
    assert len(set(drugs)) == len(drugs)
    assert all(drug.endswith(cls.stem[1:]) for cls in KNOWLEDGE_BASE for drug in cls.drugs)
    # Every value belongs to one class and no option text hides inside another: exactly one option is ever right.
    values = [cls.name for cls in KNOWLEDGE_BASE] + drugs + [
        value for cls in KNOWLEDGE_BASE for value in cls.indications + cls.contraindications + cls.side_effects
    ]
    assert len(set(values)) == len(values)
    for value in values:
        for other in values:
            assert other == value or not re.search(rf"(?<!\w){re.escape(value.lower())}s?(?!\w)", other.lower())


# --- procedural examples --------------------------------------------------------------------------------------


def test_procedural_examples_are_deterministic_prefix_stable_and_unique():
    first = procedural_examples(300, seed=3)
    assert first == EXAMPLES[:300]
    assert first != procedural_examples(300, seed=4)
    assert len({example.question for example in EXAMPLES}) == len(EXAMPLES)
    assert [example.id for example in first[:2]] == ["mcq-000000", "mcq-000001"]
    assert procedural_examples(0, seed=0) == []
    with pytest.raises(ValueError, match="n must be >= 0"):
        procedural_examples(-1, seed=0)


def test_procedural_examples_have_four_distinct_options_and_a_uniform_key():
    for example in EXAMPLES:
        stem, options = parse_options(example.question)
        assert [letter for letter, _ in options] == list("ABCD")
        assert len({text for _, text in options}) == 4
        assert len(stem.split()) <= 20 and all(len(text.split()) <= 3 for _, text in options)
        assert example.reasoning.count(".") == 1 and example.reasoning.endswith(".")
        letter, text = example.answer.split(": ")
        assert dict(options)[letter] == text and text in example.reasoning
    keys = Counter(example.answer[0] for example in EXAMPLES)
    assert all(0.2 < keys[letter] / len(EXAMPLES) < 0.3 for letter in "ABCD"), keys
    skills = Counter(example.skill for example in EXAMPLES)
    assert set(skills) == set(SKILLS) and min(skills.values()) > 150
    # A question for a drug's fact offers one other fact of the same class.
    for example in EXAMPLES:
        if example.skill in ("indication", "contraindication", "side_effect"):
            cls = next(cls for cls in KNOWLEDGE_BASE if any(drug in example.question for drug in cls.drugs))
            facts = set(cls.indications + cls.contraindications + cls.side_effects)
            assert sum(text in facts for _, text in parse_options(example.question)[1]) == 2
    levels = Counter(difficulty(example.question, example.reasoning) for example in EXAMPLES)
    assert set(levels) == {"1 steps", "2 steps", "3 steps"}
    assert all(difficulty(e.question, e.reasoning) == f"{STEPS[e.skill]} steps" for e in EXAMPLES)


def test_procedural_examples_agree_with_the_knowledge_base_and_verify():
    assert all(kb_answer(example.question) == example.answer[0] for example in EXAMPLES)
    verdicts = verify_batch(*zip(*[(e.question, e.reasoning, e.answer) for e in EXAMPLES]))
    assert [(v.verified, v.reason, v.answer) for v in verdicts] == [(True, "", None)] * len(EXAMPLES)
    # Every procedural question is one of the knowledge base's forms, so each was checked against it.
    assert all(v.evidence == f"four distinct options, the reasoning states only {e.answer[0]}; knowledge base: only "
               f"{e.answer[0]} is right" for v, e in zip(verdicts, EXAMPLES))


@pytest.mark.parametrize(
    ("skill", "stem", "reasoning"),
    [
        ("class_of", r"\w+ belongs to which drug class\?", r"The -\w+ stem marks [\w ]+, so \w+ is an? [\w ]+\."),
        ("indication", r"\w+ is used to treat which condition\?", r"\w+ is an? [\w ]+; [\w ]+ treat [\w ]+\."),
        ("contraindication", r"\w+ should be avoided in which condition\?",
         r"\w+ is an? [\w ]+; [\w ]+ should be avoided in [\w ]+\."),
        ("side_effect", r"Which is a common side effect of \w+\?", r"\w+ is an? [\w ]+; [\w ]+ can cause [\w ]+\."),
        ("drug_of_class", r"Which drug is an? [\w ]+\?", r"The -\w+ stem marks [\w ]+, so \w+ is an? [\w ]+\."),
        ("drug_for", r"Which drug is used to treat [\w ]+\?", r"[\w ]+ treat [\w ]+; \w+ is an? [\w ]+\."),
        ("drug_to_avoid", r"Which drug should be avoided in [\w ]+\?",
         r"[\w ]+ should be avoided in [\w ]+; \w+ is an? [\w ]+\."),
        ("drug_causing", r"Which drug can cause [\w ]+\?", r"[\w ]+ can cause [\w ]+; \w+ is an? [\w ]+\."),
        ("interaction", r"Which drug should not be combined with \w+\?",
         r"\w+ is an? [\w ]+; [\w ]+ should not be combined with [\w ]+; \w+ is an? [\w ]+\."),
    ],
)
def test_each_skill_has_its_template(skill, stem, reasoning):
    examples = [example for example in EXAMPLES if example.skill == skill]
    assert all(re.fullmatch(stem, parse_options(e.question)[0]) for e in examples)
    assert all(re.fullmatch(reasoning, e.reasoning) for e in examples)


# --- the knowledge base's answers -----------------------------------------------------------------------------

INDICATION = "Zorivan is used to treat which condition?\nA. asthma\nB. angina\nC. edema\nD. hives"


@pytest.mark.parametrize(
    ("question", "letter"),
    [
        (INDICATION, "B"),
        ("  zorivan   IS used to treat which condition? \nA. asthma\nB. Angina.\nC. edema\nD. hives", "B"),
        ("Zorivan is used to treat which condition?\nA. flu\nB. cough\nC. angina\nD. gout", "C"),  # closed world
        ("Zorivan is used to treat which condition?\nA. angina\nB. hypertension\nC. edema\nD. hives", None),
        ("Zorivan is used to treat which condition?\nA. flu\nB. cough\nC. rash\nD. gout", None),
        ("Blorp is used to treat which condition?\nA. asthma\nB. angina\nC. edema\nD. hives", None),
        ("What does Zorivan treat?\nA. asthma\nB. angina\nC. edema\nD. hives", None),
        ("Which drug is used to treat angina?\nA. Belostat\nB. Abadex\nC. Kelivan\nD. Blorp", "C"),
        ("Which drug is used to treat flu?\nA. Belostat\nB. Abadex\nC. Kelivan\nD. Vinofex", None),
        ("Galurex belongs to which drug class?\nA. statin\nB. loop diuretic\nC. SSRI\nD. NSAID", "B"),
        ("Galurex should be avoided in which condition?\nA. dehydration\nB. asthma\nC. mania\nD. glaucoma", "A"),
        ("Which is a common side effect of Galurex?\nA. rash\nB. bruising\nC. nausea\nD. dizziness", "D"),
        ("Which drug is a statin?\nA. Zorivan\nB. Corostat\nC. Abadex\nD. Doralip", "B"),
        ("Which drug is statin?\nA. Zorivan\nB. Corostat\nC. Abadex\nD. Doralip", None),  # no template form
        ("Which drug should be avoided in asthma?\nA. Zorivan\nB. Corostat\nC. Abadex\nD. Doralip", "A"),
        ("Which drug can cause constipation?\nA. Zorivan\nB. Morocodan\nC. Abadex\nD. Doralip", "B"),
        # Beta blockers and calcium channel blockers interact; a drug of the asked drug's own class does not.
        ("Which drug should not be combined with Zorivan?\nA. Kelivan\nB. Corostat\nC. Nifalip\nD. Abadex", "C"),
        ("Which drug should not be combined with Zorivan?\nA. Kelivan\nB. Corostat\nC. Nifalip\nD. Teralip", None),
    ],
)
def test_kb_answer(question, letter):
    assert kb_answer(question) == letter


# --- verification ---------------------------------------------------------------------------------------------

REASONING = "Zorivan is a beta blocker; beta blockers treat angina."


@pytest.mark.parametrize(
    ("question", "reasoning", "answer", "reason"),
    [
        (INDICATION, REASONING, "B", ""),
        (INDICATION, REASONING, "B.", ""),
        (INDICATION, REASONING, "(B)", ""),
        (INDICATION, REASONING, "B. angina", ""),
        (INDICATION, "Zorivan treats angina, not asthma or edema.", "B", ""),
        (INDICATION, "Unlike asthma drugs, Zorivan treats anginas.", "B", ""),
        ("Zorivan is used to treat which condition?", REASONING, "B",
         "question has no options; expected lines 'A. ...' to 'D. ...' after the stem"),
        (INDICATION.replace("\nD. hives", ""), REASONING, "B",
         "question has options A, B, C; expected exactly four options A-D in order"),
        (INDICATION + "\nE. gout", REASONING, "B",
         "question has options A, B, C, D, E; expected exactly four options A-D in order"),
        (INDICATION.replace("C. edema\nD. hives", "D. edema\nC. hives"), REASONING, "B",
         "question has options A, B, D, C; expected exactly four options A-D in order"),
        ("\n".join(INDICATION.split("\n")[1:]), REASONING, "B", "question has no stem before its options"),
        (INDICATION.replace("C. edema", "C."), REASONING, "B", "option C is empty"),
        (INDICATION.replace("C. edema", "C.  Angina "), REASONING, "B", "options B and C are the same (Angina)"),
        (INDICATION, REASONING, "B or C", "answer 'B or C' is not one option letter A-D"),
        (INDICATION, REASONING, "E", "answer 'E' is not one option letter A-D"),
        (INDICATION, REASONING, "angina", "answer 'angina' is not one option letter A-D"),
        # The option's text decides which option an answer names, as in grading.
        (INDICATION, REASONING, "B. asthma", "reasoning does not mention the keyed option A (asthma)"),
        (INDICATION, REASONING, "D: angina", ""),
        (INDICATION, REASONING, "B: flu", "answer 'B: flu' names no option: 'flu' is none of A-D's texts"),
        (INDICATION, " ", "B", "reasoning is empty"),
        (INDICATION, "Zorivan is a beta blocker.", "B", "reasoning does not mention the keyed option B (angina)"),
        (INDICATION, "Zorivan does not treat angina.", "B",
         "reasoning mentions the keyed option B (angina) only as wrong"),
        (INDICATION, "Zorivan treats angina and asthma.", "B",
         "reasoning states option A (asthma) besides the key B; name it only as wrong"),
        (INDICATION, "Zorivan treats asthma, not angina.", "B",
         "reasoning mentions the keyed option B (angina) only as wrong"),
        (INDICATION, "Zorivan is a beta blocker; beta blockers treat asthma.", "A",
         "key A contradicts the knowledge base: Zorivan is a beta blocker; beta blockers treat angina (B)"),
        (INDICATION.replace("C. edema", "C. hypertension"), "Zorivan treats angina.", "B",
         "options B and C are all right per the knowledge base: Zorivan is a beta blocker; beta blockers treat angina "
         "(B); Zorivan is a beta blocker; beta blockers treat hypertension (C)"),
        ("Zorivan is used to treat which condition?\nA. flu\nB. cough\nC. rash\nD. gout", "Zorivan treats flu.", "A",
         "key A contradicts the knowledge base: it holds Zorivan: hypertension or angina, which no option names"),
        ("What does Zorivan treat?\nA. flu\nB. cough\nC. rash\nD. gout", "Zorivan treats flu.", "A", ""),
    ],
)
def test_verify_mcq_sample_reasons(question, reasoning, answer, reason):
    verdict = verify_mcq_sample(question, reasoning, answer)
    assert (verdict.verified, verdict.reason) == (reason == "", reason)
    # A verified answer is kept as the letter with its option's text.
    key = "A" if question.startswith("What does") else "B"
    assert not verdict.verified or (verdict.answer or answer) == f"{key}: {dict(parse_options(question)[1])[key]}"


def test_a_mention_inside_a_longer_option_counts_for_the_longer_one():
    question = "Which symptom is it?\nA. pain\nB. joint pain\nC. rash\nD. fever"
    assert verify_mcq_sample(question, "It is joint pain.", "B") == Verdict(
        True, "", "B: joint pain", "four distinct options, the reasoning states only B; knowledge base: not one of its "
        "question forms, not checked")
    assert not verify_mcq_sample(question, "It is joint pain.", "A").verified


@pytest.mark.parametrize("question", [
    # Generated in the comparison of issue 15 and kept as verified, unchecked: an invented drug, a garbled stem, a
    # KB class under the wrong article.
    "Bomyrotal is used to treat which condition?\nA. kidney disease\nB. hypothyroidism\nC. heart failure\nD. goiter",
    "Which drug is used to treatdex?\nA. Eduromyx\nB. Karovalin\nC. Nifalip\nD. Sarofex",
    "Which drug is a SSRI?\nA. Quinoprel\nB. Belostat\nC. Dimenzal\nD. Daroxil",
])
def test_the_knowledge_base_domain_verifies_only_what_its_knowledge_base_judges(question):
    reasoning = f"It is {dict(parse_options(question)[1])['B']}."
    assert kb_judgement(question) is None
    assert verify_mcq_sample(question, reasoning, "B").evidence.endswith("knowledge base: not one of its question "
                                                                         "forms, not checked")
    verdict = verify_mcq_sample(question, reasoning, "B", knowledge_base=True)
    assert not verdict.verified
    assert verdict.reason.endswith("is in none of the knowledge base's forms or names what it does not hold, so "
                                   "nothing can check its key")
    assert verdict.reason.startswith(f"question {parse_options(question)[0][:80]!r}")
    # A question the knowledge base judges is verified as before.
    assert verify_mcq_sample(INDICATION, REASONING, "B", knowledge_base=True).evidence.endswith(
        "knowledge base: only B is right")


def test_the_pipeline_asks_the_knowledge_base_only_of_the_procedural_domain():
    """verify_rules reads the mcq source: a generated question about a drug the knowledge base lacks is unverifiable
    in the procedural domain, and checked by its form alone when the data is real (MedMCQA has no oracle)."""
    question = "Bomyrotal is used to treat which condition?\nA. goiter\nB. hypothyroidism\nC. gout\nD. flu"
    sources = {"math": "procedural", "code": "procedural"}
    verdicts = {source: verify_samples("mcq", [question], ["It treats hypothyroidism."], ["B"], verify_rules(
        resolve({"domain": "mcq", "prepare": {"sources": {**sources, "mcq": source}}})))[0]
                for source in ("procedural", "openlifescienceai/medmcqa")}
    assert not verdicts["procedural"].verified and "knowledge base" in verdicts["procedural"].reason
    assert verdicts["openlifescienceai/medmcqa"].verified


def test_procedural_examples_survive_the_sample_format():
    for example in EXAMPLES[:50]:
        fields = (example.question, example.reasoning, example.answer)
        parsed = parse_sample(format_sample(*fields))
        assert (parsed.question, parsed.reasoning, parsed.answer) == fields
        assert verify_mcq_sample(parsed.question, parsed.reasoning, parsed.answer, knowledge_base=True).verified


def test_verify_batch_checks_lengths():
    with pytest.raises(ValueError, match="differ in length: 1, 0, 0"):
        verify_batch([INDICATION], [], [])


# --- student answers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "letter"),
    [
        (" Zorivan treats angina.\n#### B", "B"),
        (" x\n#### B.", "B"),
        (" x\n#### (C)", "C"),
        (" x\n#### D. hives\nmore", "D: hives"),
        (" x\n#### A) asthma", "A: asthma"),
        (" x\n#### B:  Slow heart  rate", "B: Slow heart rate"),
        (" x\n#### B or C", None),
        (" x\n#### (B) or (C)", None),
        (" x\n#### E", None),
        (" x\n#### angina", None),
        (" x\n#### A beta blocker", None),
        (" x\n####", None),
        (" no marker B", None),
    ],
)
def test_extract_answer(completion, letter):
    assert extract_answer(completion) == letter


def test_student_completion_round_trips_and_answers_match():
    for example in EXAMPLES[:50]:
        assert extract_answer(student_completion(example.reasoning, example.answer)) == example.answer
    assert answers_match("B", "B") and answers_match("(B)", "B") and answers_match("B. angina", "B")
    assert not answers_match("C", "B") and not answers_match("B or C", "B") and not answers_match("", "B")
    # With a text on both sides the text decides: it is right only when it is the keyed option's text.
    assert answers_match("C: Angina.", "B: angina") and not answers_match("B: asthma", "B: angina")


def test_chosen_option_is_the_option_an_answer_names():
    answers = ("B", "(C)", "D: angina", "B: ANGINA", "A: flu", "angina")
    assert [chosen_option(answer, INDICATION) for answer in answers] == ["B", "C", "B", "B", None, None]
    assert parse_key("B. angina") == ("B", "angina") and parse_key("b") is None


# --- self-consistency -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("votes", "mode", "verdict", "key"),
    [
        (["B", "B", "A", None, "B"], "relabel", Verdict(True, "", evidence="answer model: 3/5 votes for B"), "B"),
        (["B", "B", "A", None, "B"], "reject", Verdict(True, "", evidence="answer model: 3/5 votes for B"), "B"),
        (["C", "C", "C", "B", None], "relabel",
         Verdict(True, "", evidence="answer model: relabelled B to C (3/5 votes)"), "C"),
        (["C", "C", "C", "B", None], "reject", Verdict(False, "answer model votes C (3/5) against key B"), "B"),
        (["C", "C", "B", None, None], "relabel", Verdict(False, "no clear majority: C has 2/5 votes, below 0.6"), "B"),
        (["C", "C", "B", "B", "A"], "reject", Verdict(False, "no clear majority: C and B tie at 2/5 votes"), "B"),
        ([None, "garbage", None], "relabel", Verdict(False, "no clear majority: none of the 3 votes names an option"),
         "B"),
        (["(D)", "D. gout", "D", "B", "D"], "relabel",
         Verdict(True, "", evidence="answer model: relabelled B to D (4/5 votes)"), "D"),
    ],
)
def test_self_consistency(votes, mode, verdict, key):
    assert self_consistency(votes, "B", mode, min_agreement=0.6) == (verdict, key)


def test_self_consistency_threshold_is_inclusive_and_arguments_are_checked():
    assert self_consistency(["A"] * 7 + ["B"] * 3, "B", "relabel", 0.7) == (
        Verdict(True, "", evidence="answer model: relabelled B to A (7/10 votes)"), "A")
    for args, message in [
        ((["A"], "A", "vote", 0.5), "mode must be"),
        ((["A"], "A", "reject", 0.0), "min_agreement must be in"),
        (([], "A", "reject", 0.5), "votes must not be empty"),
        ((["A"], "A or B", "reject", 0.5), "key must be one option letter"),
    ]:
        with pytest.raises(ValueError, match=message):
            self_consistency(*args)


# --- MedMCQA-style records ------------------------------------------------------------------------------------


def _medmcqa_row(cop, **fields) -> dict:
    row = {"id": f"q{cop}", "question": "Which drug  treats\nangina?", "opa": "Zorivan", "opb": "Belostat",
           "opc": "Abadex", "opd": "Vinofex", "cop": cop, "exp": "Zorivan is a beta blocker.",
           "subject_name": "Pharmacology", "topic_name": None}
    return row | fields


def _write_jsonl(path, rows) -> None:
    path.write_text("\n".join(row if isinstance(row, str) else json.dumps(row) for row in rows) + "\n")


def test_medmcqa_cop_numbering_is_detected_per_file(tmp_path):
    _write_jsonl(tmp_path / "hf.jsonl", [_medmcqa_row(0), _medmcqa_row(3), _medmcqa_row("c")])
    _write_jsonl(tmp_path / "original.json", [_medmcqa_row(1), "", _medmcqa_row(4, exp=None, subject_name=None)])
    hf = load_examples(str(tmp_path / "hf.jsonl"))
    original = load_examples(str(tmp_path / "original.json"))
    assert [example.answer for example in hf] == ["A: Zorivan", "D: Vinofex", "C: Abadex"]
    assert [example.answer for example in original] == ["A: Zorivan", "D: Vinofex"]
    assert hf[0] == Example(
        id="medmcqa-q0", skill="medmcqa_pharmacology",
        question="Which drug treats angina?\nA. Zorivan\nB. Belostat\nC. Abadex\nD. Vinofex",
        reasoning="Zorivan is a beta blocker.", answer="A: Zorivan",
    )
    # No explanation: the minimal reasoning names the keyed option.
    assert (original[1].reasoning, original[1].skill) == ("The answer is Vinofex.", "medmcqa")
    assert load_examples(str(tmp_path / "hf.jsonl"), limit=1) == hf[:1]


def test_medmcqa_directory_splits_and_ids(tmp_path):
    _write_jsonl(tmp_path / "train.json", [_medmcqa_row("A", id=None)])
    _write_jsonl(tmp_path / "dev.json", [_medmcqa_row("B")])
    assert [e.id for e in load_examples(str(tmp_path))] == ["medmcqa-train-0"]
    assert [e.answer for e in load_examples(str(tmp_path), split="validation")] == ["B: Belostat"]
    with pytest.raises(FileNotFoundError, match="MedMCQA split file not found: tried .*test.jsonl, .*test.json"):
        load_examples(str(tmp_path), split="test")
    with pytest.raises(FileNotFoundError, match="MCQ source not found"):
        load_examples(str(tmp_path / "missing.jsonl"))
    with pytest.raises(ValueError, match="limit must be >= 0"):
        load_examples(str(tmp_path), limit=-1)


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        (_medmcqa_row(9), "medmcqa.jsonl line 7: cop: expected 0-3, 1-4 or A-D, got 9"),
        (_medmcqa_row("E"), "medmcqa.jsonl line 7: cop: expected 0-3, 1-4 or A-D, got 'E'"),
        (_medmcqa_row(-1), "medmcqa.jsonl line 7: cop: expected 0-3, 1-4 or A-D, got -1 (MedMCQA's test split hides"),
        (_medmcqa_row(True), "medmcqa.jsonl line 7: cop: expected 0-3, 1-4 or A-D, got True"),
        ({k: v for k, v in _medmcqa_row(1).items() if k != "cop"}, "medmcqa.jsonl line 7: missing field 'cop'"),
        ({k: v for k, v in _medmcqa_row(1).items() if k != "opb"}, "medmcqa.jsonl line 7: missing field 'opb'"),
        (_medmcqa_row(1, opc=" "), "medmcqa.jsonl line 7: opc: expected a non-empty string, got ' '"),
        (_medmcqa_row(1, question=3), "medmcqa.jsonl line 7: question: expected a non-empty string, got 3"),
        (_medmcqa_row(1, exp=["x"]), "medmcqa.jsonl line 7: exp: expected a string or null, got list"),
        ("[1, 2]", "medmcqa.jsonl line 7: expected a JSON object with question, opa-opd and cop, got list"),
        ('{"question": ', "medmcqa.jsonl line 7: invalid JSON"),
    ],
)
def test_medmcqa_bad_rows_name_file_line_and_field(tmp_path, bad_row, message):
    # Lines 1-4 fix the 0-3 numbering, line 5 is blank, line 7 is bad.
    rows = [_medmcqa_row(cop) for cop in (0, 1, 2, 3)] + ["", _medmcqa_row(2), bad_row]
    _write_jsonl(tmp_path / "medmcqa.jsonl", rows)
    with pytest.raises(ValueError, match=re.escape(message)):
        load_examples(str(tmp_path / "medmcqa.jsonl"))


def test_medmcqa_cop_numbering_must_be_consistent_and_decidable(tmp_path):
    _write_jsonl(tmp_path / "mixed.jsonl", [_medmcqa_row(1), _medmcqa_row(0), _medmcqa_row(4)])
    with pytest.raises(ValueError, match=r"mixed.jsonl: cop is 0 on line 2 and 4 on line 3; expected 0-3 \(HF"):
        load_examples(str(tmp_path / "mixed.jsonl"))
    _write_jsonl(tmp_path / "unclear.jsonl", [_medmcqa_row("A"), _medmcqa_row(2)])
    with pytest.raises(ValueError, match=r"unclear.jsonl line 2: cop: cannot tell 0-3 from 1-4 numbering"):
        load_examples(str(tmp_path / "unclear.jsonl"))


def test_pubmedqa_hub_id_refuses_a_split_that_would_mix_in_test_questions():
    with pytest.raises(ValueError, match="has no official train/test split"):
        load_examples("qiaojin/PubMedQA", split="train")


# --- PubMedQA -------------------------------------------------------------------------------------------------


def _pubmedqa_record(decision: str, question: str = "Does it work?") -> dict:
    return {"QUESTION": question, "CONTEXTS": ["word " * 70, "more"], "LABELS": ["A", "B"], "MESHES": [],
            "final_decision": decision, "LONG_ANSWER": "It does."}


def test_pubmedqa_fixture_splits_and_errors(tmp_path):
    (tmp_path / "ori_pqal.json").write_text(json.dumps({"1": _pubmedqa_record("yes"), "2": _pubmedqa_record("maybe")}))
    (tmp_path / "test_ground_truth.json").write_text(json.dumps({"2": "maybe"}))
    (test,) = load_examples(str(tmp_path), split="test")
    assert test.id == "pubmedqa-2" and test.answer == "C: maybe" and test.reasoning == "It does."
    stem, options = parse_options(test.question)
    assert options == [("A", "yes"), ("B", "no"), ("C", "maybe")]
    assert stem == "Does it work? Context: " + "word " * mcq.PUBMEDQA_CONTEXT_WORDS + "..."
    assert [e.id for e in load_examples(str(tmp_path / "ori_pqal.json"))] == ["pubmedqa-1"]
    assert len(load_examples(str(tmp_path), split="all")) == 2
    (tmp_path / "test_ground_truth.json").write_text(json.dumps({"2": "no"}))
    with pytest.raises(ValueError, match=r"test_ground_truth.json PMID 2: label 'no' differs from final_decision"):
        load_examples(str(tmp_path), split="test")
    (tmp_path / "test_ground_truth.json").unlink()
    with pytest.raises(FileNotFoundError, match="PubMedQA test ids not found"):
        load_examples(str(tmp_path), split="train")
    (tmp_path / "ori_pqal.json").write_text(json.dumps({"7": _pubmedqa_record("perhaps")}))
    with pytest.raises(ValueError, match=r"ori_pqal.json PMID 7: final_decision: expected yes, no or maybe, "
                                         r"got 'perhaps'"):
        load_examples(str(tmp_path), split="all")


@pytest.mark.skipif(not PUBMEDQA.is_dir(), reason="shared PubMedQA data not present")
def test_real_pubmedqa_labels_parse_and_the_official_splits_are_disjoint():
    everything = load_examples(str(PUBMEDQA), split="all")
    train, test = load_examples(str(PUBMEDQA)), load_examples(str(PUBMEDQA / "ori_pqal.json"), split="test")
    truth = json.loads((PUBMEDQA / "test_ground_truth.json").read_text())
    records = json.loads((PUBMEDQA / "ori_pqal.json").read_text())
    assert (len(everything), len(train), len(test)) == (1000, 500, 500)
    assert {e.id for e in test} == {f"pubmedqa-{pmid}" for pmid in truth}
    assert not {e.id for e in train} & {e.id for e in test}
    assert {e.id for e in train} | {e.id for e in test} == {e.id for e in everything}
    decisions = Counter(e.answer for e in everything)
    assert decisions == Counter({"A: yes": 552, "B: no": 338, "C: maybe": 110})
    for example in everything:
        decision = records[example.id.removeprefix("pubmedqa-")]["final_decision"]
        assert f"{'ABC'['yes no maybe'.split().index(decision)]}: {decision}" == example.answer
        assert [letter for letter, _ in parse_options(example.question)[1]] == ["A", "B", "C"]
        assert example.skill == "pubmedqa" and example.reasoning
    for example in test:
        assert example.answer.endswith(f": {truth[example.id.removeprefix('pubmedqa-')]}")


def test_parse_options_keeps_a_lettered_stem_line_in_the_stem():
    question = "B. pertussis causes which disease?\nA. whooping cough\nB. tetanus\nC. cholera\nD. typhoid"
    stem, options = parse_options(question)
    assert stem == "B. pertussis causes which disease?" and [letter for letter, _ in options] == list("ABCD")


def test_format_question_checks_the_option_count():
    assert format_question(" Q ", ["a", "b"]) == "Q\nA. a\nB. b"
    with pytest.raises(ValueError, match="expected 2 to 4 options, got 5"):
        format_question("Q", list("abcde"))


def test_answer_model_in_the_verify_stage_relabels_or_rejects(smoke_workspace, tmp_path):
    """The verify stage on medical samples with the answer model's vote: every kept row carries the majority
    letter (relabel) or was dropped with a self-consistency reason (reject)."""
    import shutil

    import pandas as pd

    from acqsynth import artifacts, stages
    from acqsynth.config import Layout, profile_params, resolve
    from acqsynth.domains import mcq
    from acqsynth.domains.sample import format_sample

    root = tmp_path / "workspace"
    shutil.copytree(smoke_workspace, root)
    layout = Layout(root)
    examples = mcq.procedural_examples(12, seed=5)
    completions = [format_sample(e.question, e.reasoning, e.answer) for e in examples]
    artifacts.write_table(layout.generated, pd.DataFrame({
        "id": [f"gen-{i:06d}" for i in range(len(examples))], "domain": "mcq", "seed_id": "mcq/x",
        "generator": "models/generator_grpo@0", "completion": completions, "parsed": True, "parse_error": "",
        "question": [e.question for e in examples], "reasoning": [e.reasoning for e in examples],
        "answer": [e.answer for e in examples]}))
    for mode in ("reject", "relabel"):
        config = resolve({**profile_params("smoke"), "domain": "mcq",
                          "verify": {"answer_model": {"samples": 3, "mode": mode, "min_agreement": 0.6}}})
        stages.verify(config, layout)
        kept = artifacts.read_table(layout.verified)
        rejected = artifacts.read_table(layout.verified.with_name("rejected.parquet"))
        assert len(kept) + len(rejected) == len(examples)
        assert rejected["reason"].str.startswith(("answer model: ", "copy: ")).all()
        if mode == "reject":  # each kept answer is its sample's own (in the domain's form, `mcq.from_generator`)
            written = dict(mcq.from_generator(e.question, e.reasoning, e.answer)[::2] for e in examples)
            assert (kept["answer"] == [written[q] for q in kept["question"]]).all()
        # Either way a kept answer is the letter with its own option's text.
        assert all(mcq.chosen_option(answer, question) == answer[0]
                   for question, answer in zip(kept["question"], kept["answer"], strict=True))


def test_the_verify_stage_keeps_an_answer_as_the_option_its_text_names(smoke_workspace, tmp_path):
    """A generated answer whose letter is not its text's option is verified by its text, as grading reads it, and
    kept with the right letter; an answer whose text is no option is rejected."""
    import shutil

    import pandas as pd

    from acqsynth import artifacts, stages
    from acqsynth.config import Layout, profile_params, resolve
    from acqsynth.domains.sample import format_sample

    root = tmp_path / "workspace"
    shutil.copytree(smoke_workspace, root)
    layout = Layout(root)
    examples = procedural_examples(6, seed=11)
    wrong_letter = [f"{'ABCD'[('ABCD'.index(e.answer[0]) + 1) % 4]}{e.answer[1:]}" for e in examples[:4]]
    answers = wrong_letter + [examples[4].answer, "A: no such option"]
    artifacts.write_table(layout.generated, pd.DataFrame({
        "id": [f"gen-{i:06d}" for i in range(len(examples))], "domain": "mcq", "seed_id": "mcq/x",
        "generator": "models/generator_grpo@0",
        "completion": [format_sample(e.question, e.reasoning, a) for e, a in zip(examples, answers)],
        "parsed": True, "parse_error": "", "question": [e.question for e in examples],
        "reasoning": [e.reasoning for e in examples], "answer": answers}))
    stages.verify(resolve({**profile_params("smoke"), "domain": "mcq"}), layout)
    kept = artifacts.read_table(layout.verified)
    rejected = artifacts.read_table(layout.verified.with_name("rejected.parquet"))
    # Kept in the domain's form (`mcq.from_generator`: the options in an order of the question's own), each answer
    # the letter of the option its text names.
    assert [mcq.from_generator(e.question, e.reasoning, e.answer) for e in examples[:5]] == list(
        zip(kept["question"], kept["reasoning"], kept["answer"]))
    assert list(rejected["reason"]) == ["answer 'A: no such option' names no option: 'no such option' is none of "
                                        "A-D's texts"]


def test_a_question_that_repeats_a_letter_is_judged_option_by_option():
    """GRPO's rollouts are read for their difficulty before verification rejects them (a run crashed on this)."""
    question = "Zorivan is used to treat which condition?\nA. hives\nB. panic disorder\nB. hypertension\nD. gout"
    judgement = kb_judgement(question)
    assert judgement.correct == ("B",) and judgement.reasons == ("Zorivan is a beta blocker; beta blockers treat "
                                                                  "hypertension.",)
    assert difficulty(question, "") == "2 steps"
    assert verify_mcq_sample(question, "Zorivan treats hypertension.", "B: hypertension").reason.startswith(
        "question has options A, B, B, D")
