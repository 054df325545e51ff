"""Medical multiple-choice domain: an invented pharmacology knowledge base (procedural), MedMCQA and PubMedQA (real).

A record is an `Example` whose `question` is a stem followed by one option per line, `A. text`, `B. text`, ...;
`answer` is the key letter and `reasoning` a short explanation that names the keyed option's text.

Option count. Generated samples, and every procedural example, have exactly four options A-D (the verifier,
`acqsynth.verify.mcq`, accepts nothing else). Loaded data keeps the options its source has: MedMCQA has four;
PubMedQA is a yes/no/maybe task and becomes three options `A. yes`, `B. no`, `C. maybe`. We do not pad it with a
fourth option that is never right: that would only change the chance rate and the label set the task defines.

Knowledge base. In `KNOWLEDGE_BASE` the drug names and their class stems are invented, so a model cannot answer
from real-world knowledge; the class names are real but their facts are simplified. Each indication,
contraindication and side effect belongs to exactly one class, and the KB is closed-world: what it does not list
for a drug is false.
That makes exactly one option of every procedural question correct, and lets `kb_judgement` judge a generated
question in a template form even when its distractors are values the KB has never seen.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from acqsynth.domains.records import looks_like_hub_id
from acqsynth.domains.sample import Example, answer_text, graded_by_answer

if TYPE_CHECKING:
    import pandas as pd

    from acqsynth.domains.sample import Verdict
    from acqsynth.verify.samples import VerifyRules
    from acqsynth.verify.sandbox import MissingLayers

NAME = "mcq"
GENERATOR_INSTRUCTION = "Write a new medical multiple-choice question like this example."
LETTERS = "ABCD"

# ---------------------------------------------------------------------------------------------------------------
# Question text: stem and lettered options


def normalise_text(text: str) -> str:
    """Case-folded, whitespace-collapsed text without a final full stop: how options are compared."""
    return " ".join(text.split()).casefold().rstrip(".").rstrip()


def format_question(stem: str, options: Sequence[str]) -> str:
    """The stem, then one `X. text` line per option; whitespace runs (newlines included) become single spaces."""
    if not 2 <= len(options) <= len(LETTERS):
        raise ValueError(f"expected 2 to {len(LETTERS)} options, got {len(options)}")
    lines = [" ".join(stem.split())]
    lines += [f"{letter}. {' '.join(option.split())}" for letter, option in zip(LETTERS, options)]
    return "\n".join(lines)


_OPTION_LINE_RE = re.compile(r"([A-Z])\.(?:\s+(.*))?")


def parse_options(question: str) -> tuple[str, list[tuple[str, str]]]:
    """(stem, [(letter, option text), ...]): the options are the trailing lines of the form `X. text`, back to the
    last `A.` line at most, so that a stem line such as "B. pertussis causes ..." stays in the stem."""
    lines = [line.strip() for line in question.strip().split("\n")]
    matches = []
    for line in reversed(lines):
        match = _OPTION_LINE_RE.fullmatch(line)
        if match is None:
            break
        matches.append(match)
        if match[1] == "A":
            break
    options = [(match[1], (match[2] or "").strip()) for match in reversed(matches)]
    return "\n".join(lines[: len(lines) - len(matches)]).strip(), options


# A key is one letter, optionally in parentheses or followed by `.`, `:` or `)` and then that option's text.
# The punctuation before any text is required, so "B or C" and "A beta blocker" are not keys.
_KEY_RE = re.compile(r"(?:\((?P<paren>[A-D])\)|(?P<bare>[A-D])[.:)]?)(?:(?<=[.:)])\s+(?P<text>.+))?")
_CONNECTOR_RE = re.compile(r"(?:or|and|&|/|,)(?!\w)", re.IGNORECASE)


def parse_key(text: str) -> tuple[str, str] | None:
    """(letter, option text or "") of `B`, `B.`, `(B)`, `B) text` or `B. text`; None for anything else (`B or C`)."""
    match = _KEY_RE.fullmatch(text.strip())
    if match is None:
        return None
    option_text = (match["text"] or "").strip()
    if _CONNECTOR_RE.match(option_text):
        return None
    return match["paren"] or match["bare"], option_text


# ---------------------------------------------------------------------------------------------------------------
# The invented knowledge base


@dataclass(frozen=True)
class DrugClass:
    """One drug class and the facts every drug of it shares. Every drug name ends in the class `stem`, as real
    drug names carry their class (-olol, -statin), so the class of a name is learnable from its spelling."""

    name: str
    plural: str
    article: str
    stem: str
    drugs: tuple[str, ...]
    indications: tuple[str, ...]
    contraindications: tuple[str, ...]
    side_effects: tuple[str, ...]


KNOWLEDGE_BASE: tuple[DrugClass, ...] = (
    DrugClass("beta blocker", "beta blockers", "a", "-ivan", ("Zorivan", "Kelivan", "Tamivan", "Rupivan"),
              ("hypertension", "angina"), ("asthma",), ("slow heart rate", "fatigue")),
    DrugClass("statin", "statins", "a", "-ostat", ("Belostat", "Corostat", "Dunostat", "Felostat"),
              ("high cholesterol",), ("liver disease", "pregnancy"), ("muscle pain",)),
    DrugClass("loop diuretic", "loop diuretics", "a", "-urex", ("Galurex", "Hemurex", "Jovurex", "Lanurex"),
              ("edema", "heart failure"), ("dehydration",), ("low potassium", "dizziness")),
    DrugClass("proton pump inhibitor", "proton pump inhibitors", "a", "-oprel",
              ("Mitoprel", "Nesoprel", "Pavoprel", "Quinoprel"),
              ("acid reflux", "stomach ulcers"), ("osteoporosis",), ("headache",)),
    DrugClass("SSRI", "SSRIs", "an", "-oxil", ("Daroxil", "Feroxil", "Moroxil", "Taroxil"),
              ("depression", "anxiety"), ("mania",), ("nausea", "insomnia")),
    DrugClass("anticoagulant", "anticoagulants", "an", "-adex", ("Abadex", "Ciradex", "Eladex", "Iradex"),
              ("blood clots", "atrial fibrillation"), ("active bleeding",), ("bruising",)),
    DrugClass("antihistamine", "antihistamines", "an", "-ermin", ("Bolermin", "Cavermin", "Dolermin", "Kivermin"),
              ("hay fever", "hives"), ("glaucoma",), ("drowsiness", "dry mouth")),
    DrugClass("NSAID", "NSAIDs", "an", "-ofex", ("Balofex", "Vinofex", "Nilofex", "Sarofex"),
              ("joint pain", "back pain"), ("kidney disease",), ("heartburn", "rash")),
)

SKILLS = ("class_of", "indication", "contraindication", "side_effect", "which_drug_for")

_STEMS = {
    "class_of": "{drug} belongs to which drug class?",
    "indication": "{drug} is used to treat which condition?",
    "contraindication": "{drug} should be avoided in which condition?",
    "side_effect": "Which is a common side effect of {drug}?",
    "which_drug_for": "Which drug is used to treat {condition}?",
}
# Each stem with its one placeholder (the drug, or the condition) captured as `entity`.
_STEM_PATTERNS = {
    skill: re.compile(re.sub(r"\\\{\w+\\\}", "(?P<entity>.+)", re.escape(stem)), re.IGNORECASE)
    for skill, stem in _STEMS.items()
}
# How each skill states one fact, for reasoning and messages; `{value}` is the option text.
_FACTS = {
    "class_of": "{drug} is {article} {value}",
    "indication": "{drug} treats {value}",
    "contraindication": "{drug} should be avoided in {value}",
    "side_effect": "{drug} can cause {value}",
    "which_drug_for": "{value} treats {condition}",
}
_CLASS_FACTS = {
    "indication": "{plural} treat {value}",
    "contraindication": "{plural} should be avoided in {value}",
    "side_effect": "{plural} can cause {value}",
}
_DRUG_CLASS = {normalise_text(drug): cls for cls in KNOWLEDGE_BASE for drug in cls.drugs}
_CONDITION_CLASS = {normalise_text(condition): cls for cls in KNOWLEDGE_BASE for condition in cls.indications}


def _true_values(skill: str, cls: DrugClass) -> tuple[str, ...]:
    """The option texts the KB holds true for a question of `skill` about a drug of (or a condition of) `cls`."""
    if skill == "class_of":
        return (cls.name,)
    if skill == "which_drug_for":
        return cls.drugs
    return {"indication": cls.indications, "contraindication": cls.contraindications,
            "side_effect": cls.side_effects}[skill]


@dataclass(frozen=True)
class KbJudgement:
    """What the KB says about a question in one of the template forms."""

    skill: str
    correct: tuple[str, ...]  # letters of the options the KB holds true, in order
    facts: tuple[str, ...]  # the fact behind each correct letter, e.g. "Zorivan treats angina"
    known: str  # everything the KB holds true for the stem, e.g. "Zorivan treats hypertension or angina"


def kb_judgement(question: str) -> KbJudgement | None:
    """The KB's view of `question`; None if its stem is in no template form or names a drug (or, for
    which_drug_for, a condition) the KB does not know. Options the KB does not know are false (closed world)."""
    stem, options = parse_options(question)
    stem = " ".join(stem.split())
    for skill, pattern in _STEM_PATTERNS.items():
        match = pattern.fullmatch(stem)
        if match is None:
            continue
        entity = normalise_text(match["entity"])
        cls = (_CONDITION_CLASS if skill == "which_drug_for" else _DRUG_CLASS).get(entity)
        if cls is None:
            return None
        names = cls.indications if skill == "which_drug_for" else cls.drugs
        canonical = next(name for name in names if normalise_text(name) == entity)
        subject = {"drug": canonical, "condition": canonical, "article": cls.article}
        values = _true_values(skill, cls)
        by_text = {normalise_text(value): value for value in values}
        correct = tuple(letter for letter, text in options if normalise_text(text) in by_text)
        facts = tuple(_FACTS[skill].format(value=by_text[normalise_text(text)], **subject)
                      for letter, text in options if letter in correct)
        if skill == "which_drug_for":
            known = f"{', '.join(values[:-1])} and {values[-1]} treat {canonical}"
        else:
            known = _FACTS[skill].format(value=" or ".join(values), **subject)
        return KbJudgement(skill=skill, correct=correct, facts=facts, known=known)
    return None


def difficulty(question: str, reasoning: str) -> str | None:
    """A question's difficulty: its knowledge-base skill (`class_of`, ...); None for a question in no KB form."""
    judgement = kb_judgement(question)
    return judgement.skill if judgement is not None else None


def kb_answer(question: str) -> str | None:
    """The letter the KB says is correct; None if the question is in no template form, names an unknown drug or
    condition in its stem, or has no option or more than one option that the KB holds true."""
    judgement = kb_judgement(question)
    if judgement is None or len(judgement.correct) != 1:
        return None
    return judgement.correct[0]


# ---------------------------------------------------------------------------------------------------------------
# Procedural questions


def _kb_question(rng: random.Random, skill: str) -> tuple[str, str, list[str], str]:
    """(stem, keyed option, three distractors, reasoning) of one question of `skill`."""
    cls = rng.choice(KNOWLEDGE_BASE)
    others = [other for other in KNOWLEDGE_BASE if other is not cls]
    if skill == "which_drug_for":
        condition, key = rng.choice(cls.indications), rng.choice(cls.drugs)
        stem = _STEMS[skill].format(condition=condition)
        fact = _CLASS_FACTS["indication"].format(plural=cls.plural, value=condition)
        reasoning = f"{key} is {cls.article} {cls.name}; {fact}."
    else:
        drug, key = rng.choice(cls.drugs), rng.choice(_true_values(skill, cls))
        stem = _STEMS[skill].format(drug=drug)
        if skill == "class_of":
            reasoning = f"The {cls.stem} stem marks {cls.plural}, so {drug} is {cls.article} {cls.name}."
        else:
            fact = _CLASS_FACTS[skill].format(plural=cls.plural, value=key)
            reasoning = f"{drug} is {cls.article} {cls.name}; {fact}."
    # Distractors come only from other classes: with facts disjoint across classes, exactly one option is right.
    pool = [value for other in others for value in _true_values(skill, other)]
    return stem, key, rng.sample(pool, 3), reasoning


def procedural_examples(n: int, seed: int) -> list[Example]:
    """`n` KB questions with unique question texts, skills drawn uniformly from SKILLS, the key uniformly placed
    among A-D; the same for the same seed, and asking for more leaves the first ones unchanged."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    examples: list[Example] = []
    seen: set[str] = set()
    for i in range(n):
        rng = random.Random(f"{seed}:{i}")
        # The KB allows tens of thousands of questions; redraws only skip the rare repeat.
        for _ in range(1000):
            skill = rng.choice(SKILLS)
            stem, key, distractors, reasoning = _kb_question(rng, skill)
            position = rng.randrange(len(LETTERS))
            options = distractors[:position] + [key] + distractors[position:]
            question = format_question(stem, options)
            if question not in seen:
                break
        else:
            raise ValueError(f"cannot find {n} distinct questions in the knowledge base (stuck at {i})")
        seen.add(question)
        examples.append(Example(id=f"mcq-{i:06d}", skill=skill, question=question, reasoning=reasoning,
                                answer=LETTERS[position]))
    return examples


# ---------------------------------------------------------------------------------------------------------------
# Real data: MedMCQA-style records and PubMedQA

MEDMCQA_OPTION_FIELDS = ("opa", "opb", "opc", "opd")
PUBMEDQA_DECISIONS = ("yes", "no", "maybe")
# PubMedQA contexts average ~200 words; the students read at most a few hundred tokens, so the question keeps the
# first words of the abstract. Some questions then become harder than in PubMedQA's reasoning-required setting.
PUBMEDQA_CONTEXT_WORDS = 60
_SPLIT_ALIASES = {"validation": ("validation", "dev"), "dev": ("dev", "validation")}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _string_field(row: dict, field: str, where: str) -> str:
    if field not in row:
        raise ValueError(f"{where}: missing field {field!r}")
    value = row[field]
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: {field}: expected a non-empty string, got {value!r}")
    return _one_line(value)


def _cop_base(rows: list[tuple[int, object]], where: str) -> int | None:
    """0 when some row has cop 0 (the HF release, 0-3), 1 when some has cop 4 (the original release, 1-4), None
    when no row tells (only letters, or only 1-3); both 0 and 4 is an error."""
    zero = next((number for number, row in rows if isinstance(row, dict) and _int_cop(row) == 0), None)
    four = next((number for number, row in rows if isinstance(row, dict) and _int_cop(row) == 4), None)
    if zero is not None and four is not None:
        raise ValueError(
            f"{where}: cop is 0 on line {zero} and 4 on line {four}; expected 0-3 (HF release) or 1-4 (original "
            "release) throughout"
        )
    if zero is not None:
        return 0
    return 1 if four is not None else None


def _int_cop(row: dict) -> int | None:
    cop = row.get("cop")
    return cop if isinstance(cop, int) and not isinstance(cop, bool) else None


def _key_of_cop(cop: object, base: int | None, where: str) -> str:
    if isinstance(cop, str) and cop.strip().upper() in tuple(LETTERS):
        return cop.strip().upper()
    if not isinstance(cop, int) or isinstance(cop, bool) or not 0 <= cop <= 4:
        hint = " (MedMCQA's test split hides its labels)" if cop == -1 else ""
        raise ValueError(f"{where}: cop: expected 0-3, 1-4 or A-D, got {cop!r}{hint}")
    if base is None:
        raise ValueError(
            f"{where}: cop: cannot tell 0-3 from 1-4 numbering (no row has cop 0 or 4); write the key as A-D"
        )
    return LETTERS[cop - base]


def _medmcqa_record(row: object, where: str, base: int | None, index_id: str) -> Example:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object with question, opa-opd and cop, got {type(row).__name__}")
    stem = _string_field(row, "question", where)
    options = [_string_field(row, field, where) for field in MEDMCQA_OPTION_FIELDS]
    if "cop" not in row:
        raise ValueError(f"{where}: missing field 'cop'")
    key = _key_of_cop(row["cop"], base, where)
    explanation = row.get("exp")
    if explanation is not None and not isinstance(explanation, str):
        raise ValueError(f"{where}: exp: expected a string or null, got {type(explanation).__name__}")
    # MedMCQA leaves many explanations empty; the minimal reasoning still names the keyed option, as ours do.
    reasoning = _one_line(explanation or "") or f"The answer is {options[LETTERS.index(key)]}."
    record_id = row.get("id")
    subject = row.get("subject_name")
    skill = "medmcqa"
    if isinstance(subject, str) and subject.strip():
        skill = "medmcqa_" + re.sub(r"\W+", "_", subject.lower()).strip("_")
    return Example(
        id=f"medmcqa-{record_id}" if isinstance(record_id, str) and record_id else index_id,
        skill=skill,
        question=format_question(stem, options),
        reasoning=reasoning,
        answer=key,
    )


def _pubmedqa_record(pmid: str, record: object, where: str) -> Example:
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object with QUESTION, CONTEXTS, final_decision and LONG_ANSWER")
    stem = _string_field(record, "QUESTION", where)
    contexts = record.get("CONTEXTS")
    if not isinstance(contexts, list) or not all(isinstance(context, str) for context in contexts):
        raise ValueError(f"{where}: CONTEXTS: expected a list of strings, got {contexts!r:.80}")
    decision = record.get("final_decision")
    if decision not in PUBMEDQA_DECISIONS:
        raise ValueError(f"{where}: final_decision: expected yes, no or maybe, got {decision!r}")
    words = " ".join(contexts).split()
    context = " ".join(words[:PUBMEDQA_CONTEXT_WORDS]) + (" ..." if len(words) > PUBMEDQA_CONTEXT_WORDS else "")
    return Example(
        id=f"pubmedqa-{pmid}",
        skill="pubmedqa",
        question=format_question(f"{stem} Context: {context}", PUBMEDQA_DECISIONS),
        reasoning=_string_field(record, "LONG_ANSWER", where),
        answer=LETTERS[PUBMEDQA_DECISIONS.index(decision)],
    )


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not valid UTF-8 (byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: invalid JSON ({error.msg} at line {error.lineno} column {error.colno})") from None


def _json_lines(path: Path) -> list[tuple[int, object]]:
    """(1-based line number, parsed object) of every non-blank line, with errors naming file and line."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValueError(f"{path} line {line}: not valid UTF-8 (byte {error.start})") from None
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path} line {number}: invalid JSON ({error.msg} at column {error.colno}); expected one object "
                "per line"
            ) from None
    return rows


def _load_pubmedqa_file(path: Path, split: str) -> Iterator[Example]:
    """PubMedQA's official split: `test` is the PMIDs of `test_ground_truth.json` beside `path`, `train` the rest
    of `path`, `all` everything (no ground-truth file needed)."""
    records = _read_json(path)
    if not isinstance(records, dict):
        raise ValueError(f"{path}: expected a JSON object keyed by PMID, got {type(records).__name__}")
    pmids = list(records)
    if split != "all":
        if split not in ("train", "test"):
            raise ValueError(f"PubMedQA split must be 'train', 'test' or 'all', got {split!r}")
        truth_path = path.parent / "test_ground_truth.json"
        if not truth_path.is_file():
            raise FileNotFoundError(f"PubMedQA test ids not found: {truth_path} (needed for split {split!r})")
        truth = _read_json(truth_path)
        if not isinstance(truth, dict):
            raise ValueError(f"{truth_path}: expected a JSON object of PMID -> label, got {type(truth).__name__}")
        for pmid, label in truth.items():
            if label not in PUBMEDQA_DECISIONS:
                raise ValueError(f"{truth_path} PMID {pmid}: expected yes, no or maybe, got {label!r}")
            record = records.get(pmid)
            if not isinstance(record, dict):
                raise ValueError(f"{truth_path} PMID {pmid}: no such record in {path}")
            if record.get("final_decision") != label:
                raise ValueError(
                    f"{truth_path} PMID {pmid}: label {label!r} differs from final_decision "
                    f"{record.get('final_decision')!r} in {path}"
                )
        pmids = [pmid for pmid in pmids if (pmid in truth) == (split == "test")]
    return (_pubmedqa_record(pmid, records[pmid], f"{path} PMID {pmid}") for pmid in pmids)


def _load_medmcqa_file(path: Path, split: str) -> Iterator[Example]:
    rows = _json_lines(path)
    base = _cop_base(rows, str(path))
    return (_medmcqa_record(row, f"{path} line {number}", base, f"medmcqa-{split}-{index}")
            for index, (number, row) in enumerate(rows))


def _is_pubmedqa_file(path: Path) -> bool:
    # PubMedQA is one JSON object keyed by PMID; MedMCQA files (.json in the original release too) are JSON lines.
    if path.suffix == ".jsonl":
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and bool(data) and all(isinstance(value, dict) for value in data.values())


def _medmcqa_split_file(directory: Path, split: str) -> Path:
    tried = [directory / f"{name}{suffix}" for name in _SPLIT_ALIASES.get(split, (split,))
             for suffix in (".jsonl", ".json")]
    for candidate in tried:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"MedMCQA split file not found: tried {', '.join(str(path) for path in tried)}")


def _load_from_hub(source: str, split: str) -> Iterator[Example]:
    pubmedqa = "pubmedqa" in source.lower()
    # The hub's pqa_labeled holds all 1,000 questions in one "train" split, the 500 official test ones included.
    if pubmedqa and split != "all":
        raise ValueError(
            f"{source} has no official train/test split (its one 'train' split includes the 500 test questions); "
            "pass split='all', or a local directory with ori_pqal.json and test_ground_truth.json"
        )
    from datasets import load_dataset

    if pubmedqa:
        rows = load_dataset(source, "pqa_labeled", split="train")
        return (
            _pubmedqa_record(
                str(row["pubid"]),
                {"QUESTION": row["question"], "CONTEXTS": row["context"]["contexts"],
                 "final_decision": row["final_decision"], "LONG_ANSWER": row["long_answer"]},
                f"{source} PMID {row['pubid']}",
            )
            for row in rows
        )
    # The HF MedMCQA stores cop as a class label 0-3 (opa-opd); its test split has cop -1 (hidden).
    rows = load_dataset(source, split=split)
    return (_medmcqa_record(row, f"{source}[{split}] row {index}", 0, f"medmcqa-{split}-{index}")
            for index, row in enumerate(rows))


def load_examples(source: str, split: str = "train", limit: int | None = None) -> list[Example]:
    """Real multiple-choice records from `source`:

    - a PubMedQA file (`ori_pqal.json`: an object keyed by PMID) or a directory holding it: split `test` is the
      PMIDs of `test_ground_truth.json` in the same directory, `train` the other records, `all` every record;
    - a MedMCQA-style JSON-lines file (`.jsonl`, or `.json` as in the original release) or a directory holding
      `{split}.jsonl` or `{split}.json` (`validation` and `dev` name the same split); `cop` may be 0-3 (HF release),
      1-4 (original release; detected per file from the rows with 0 or 4) or a letter A-D;
    - a hub id: `qiaojin/PubMedQA` (config pqa_labeled, split `all` only) or a MedMCQA-style dataset such as
      `openlifescienceai/medmcqa`.

    For a file path, `split` only names MedMCQA ids that the record lacks (`medmcqa-{split}-{index}`).
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    path = Path(source)
    examples: Iterator[Example]
    if path.is_dir():
        pubmedqa = path / "ori_pqal.json"
        path = pubmedqa if pubmedqa.is_file() else _medmcqa_split_file(path, split)
    if path.is_file():
        examples = _load_pubmedqa_file(path, split) if _is_pubmedqa_file(path) else _load_medmcqa_file(path, split)
    elif looks_like_hub_id(source):
        examples = _load_from_hub(source, split)
    else:
        raise FileNotFoundError(f"MCQ source not found: {source} (neither a file, a directory nor a hub id)")
    loaded = []
    for example in examples:
        if limit is not None and len(loaded) >= limit:
            break
        loaded.append(example)
    return loaded


# ---------------------------------------------------------------------------------------------------------------
# The domain's side of the student format


def extract_answer(completion: str) -> str | None:
    """The key letter after the first `####` of a student completion (`B`, `B.`, `(B)`, `B. text`); None if there
    is none or it is not a single letter A-D."""
    text = answer_text(completion)
    if not text:
        return None
    key = parse_key(text.split("\n", 1)[0])
    return key[0] if key else None


def answers_match(predicted: str, expected: str) -> bool:
    predicted_key, expected_key = parse_key(predicted), parse_key(expected)
    return predicted_key is not None and expected_key is not None and predicted_key[0] == expected_key[0]


# ---------------------------------------------------------------------------------------------------------------
# Verification and grading (the domain interface; see acqsynth.domains)


def verify(questions: list[str], reasonings: list[str], answers: list[str], rules: VerifyRules) -> list[Verdict]:
    from acqsynth.verify.mcq import verify_batch

    return verify_batch(questions, reasonings, answers)


def grade(predicted: list[str | None], examples: pd.DataFrame, workers: int = 1,
          missing_layers: MissingLayers = "refuse") -> list[bool]:
    """Whether each predicted key is its example's key."""
    return graded_by_answer(answers_match, predicted, list(examples["answer"]))
