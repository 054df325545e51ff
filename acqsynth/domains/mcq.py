"""Medical multiple-choice domain: an invented pharmacology knowledge base (procedural), MedMCQA and PubMedQA (real).

A record is an `Example` whose `question` is a stem followed by one option per line, `A. text`, `B. text`, ...;
`answer` is the key letter with its option's text, `B: angina` (the method's medical answer format), and
`reasoning` a short explanation that names the keyed option's text. A student's answer is graded by the option
it names (`answers_match`).

Option count. Generated samples, and every procedural example, have exactly four options A-D (the verifier,
`acqsynth.verify.mcq`, accepts nothing else). Loaded data keeps the options its source has: MedMCQA has four;
PubMedQA is a yes/no/maybe task and becomes three options `A. yes`, `B. no`, `C. maybe`. We do not pad it with a
fourth option that is never right: that would only change the chance rate and the label set the task defines.

Knowledge base. In `KNOWLEDGE_BASE` the drug names and their class stems are invented, so a model cannot answer
from real-world knowledge; the class names are real but their facts are simplified. Each indication,
contraindication and side effect belongs to exactly one class, each class interacts with exactly one other, and
the KB is closed-world: what it does not list for a drug is false. Questions ask for a fact in both directions
(a drug's class or indication; the drug among the options that has a class or an indication) and for
interactions, in one to three steps of the KB (`STEPS`, the domain's difficulty).
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
from acqsynth.domains.sample import Example, answer_text, as_written, graded_by_answer

if TYPE_CHECKING:
    import pandas as pd

    from acqsynth.domains.sample import Verdict
    from acqsynth.verify.samples import VerifyRules
    from acqsynth.verify.sandbox import MissingLayers

NAME = "mcq"
GENERATOR_INSTRUCTION = "Write a new medical multiple-choice question like this example."
SAMPLED_WITH_CALCULATOR = False  # a question states no value to compute
student_view = as_written  # generator_view and from_generator: below
LETTERS = "ABCD"

# ---------------------------------------------------------------------------------------------------------------
# Question text: stem and lettered options


def normalise_text(text: str) -> str:
    """Case-folded, whitespace-collapsed text without a final full stop: how options are compared."""
    return " ".join(text.split()).casefold().rstrip(".").rstrip()


def format_answer(letter: str, option: str) -> str:
    """The method's medical answer: the key letter with its option's text, `B: angina`."""
    return f"{letter}: {' '.join(option.split())}"


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
    drug names carry their class (-olol, -statin), so the class of a name is learnable from its spelling.
    `interacts_with` names the one class whose drugs must not be combined with this class's (a symmetric relation)."""

    name: str
    plural: str
    article: str
    stem: str
    drugs: tuple[str, ...]
    indications: tuple[str, ...]
    contraindications: tuple[str, ...]
    side_effects: tuple[str, ...]
    interacts_with: str


KNOWLEDGE_BASE: tuple[DrugClass, ...] = (
    DrugClass("beta blocker", "beta blockers", "a", "-ivan", ("Zorivan", "Kelivan", "Tamivan", "Rupivan"),
              ("hypertension", "angina"), ("asthma",), ("slow heart rate", "fatigue"), "calcium channel blocker"),
    DrugClass("statin", "statins", "a", "-ostat", ("Belostat", "Corostat", "Dunostat", "Felostat"),
              ("high cholesterol",), ("liver disease", "pregnancy"), ("muscle pain",), "macrolide"),
    DrugClass("loop diuretic", "loop diuretics", "a", "-urex", ("Galurex", "Hemurex", "Jovurex", "Lanurex"),
              ("edema", "heart failure"), ("dehydration",), ("low potassium", "dizziness"), "proton pump inhibitor"),
    DrugClass("proton pump inhibitor", "proton pump inhibitors", "a", "-oprel",
              ("Mitoprel", "Nesoprel", "Pavoprel", "Quinoprel"),
              ("acid reflux", "stomach ulcers"), ("osteoporosis",), ("headache",), "loop diuretic"),
    DrugClass("SSRI", "SSRIs", "an", "-oxil", ("Daroxil", "Feroxil", "Moroxil", "Taroxil"),
              ("depression", "anxiety"), ("mania",), ("nausea", "insomnia"), "opioid"),
    DrugClass("anticoagulant", "anticoagulants", "an", "-adex", ("Abadex", "Ciradex", "Eladex", "Iradex"),
              ("blood clots", "atrial fibrillation"), ("active bleeding",), ("bruising",), "NSAID"),
    DrugClass("antihistamine", "antihistamines", "an", "-ermin", ("Bolermin", "Cavermin", "Dolermin", "Kivermin"),
              ("hay fever", "hives"), ("glaucoma",), ("drowsiness", "dry mouth"), "benzodiazepine"),
    DrugClass("NSAID", "NSAIDs", "an", "-ofex", ("Balofex", "Vinofex", "Nilofex", "Sarofex"),
              ("joint pain", "back pain"), ("kidney disease",), ("heartburn", "rash"), "anticoagulant"),
    DrugClass("calcium channel blocker", "calcium channel blockers", "a", "-alip",
              ("Doralip", "Venalip", "Nifalip", "Teralip"),
              ("raynaud phenomenon", "migraine"), ("heart block",), ("ankle swelling", "flushing"),
              "beta blocker"),
    DrugClass("macrolide", "macrolides", "a", "-romyx", ("Azeromyx", "Claromyx", "Eduromyx", "Fidaromyx"),
              ("pneumonia", "strep throat"), ("long QT syndrome",), ("diarrhea",), "statin"),
    DrugClass("benzodiazepine", "benzodiazepines", "a", "-azolin", ("Alpazolin", "Lorazolin", "Midazolin",
                                                                    "Temazolin"),
              ("panic disorder", "alcohol withdrawal"), ("sleep apnea",), ("memory loss", "unsteadiness"),
              "antihistamine"),
    DrugClass("opioid", "opioids", "an", "-ocodan", ("Hydrocodan", "Oxocodan", "Morocodan", "Tapocodan"),
              ("severe pain", "chronic cough"), ("COPD",), ("constipation",), "SSRI"),
    DrugClass("ACE inhibitor", "ACE inhibitors", "an", "-enzal", ("Bortenzal", "Cavenzal", "Dimenzal", "Forenzal"),
              ("diabetic nephropathy", "heart attack recovery"), ("angioedema",), ("high potassium", "dry cough"),
              "antiepileptic"),
    DrugClass("antipsychotic", "antipsychotics", "an", "-ulazam", ("Brulazam", "Gemulazam", "Kotulazam",
                                                                   "Pirulazam"),
              ("schizophrenia", "bipolar disorder"), ("dementia",), ("weight gain", "tremor"), "thyroid hormone"),
    DrugClass("thyroid hormone", "thyroid hormones", "a", "-yrotal", ("Andyrotal", "Belyrotal", "Cesyrotal",
                                                                     "Domyrotal"),
              ("hypothyroidism", "goiter"), ("thyrotoxicosis",), ("palpitations",), "antipsychotic"),
    DrugClass("antiepileptic", "antiepileptics", "an", "-ovalin", ("Karovalin", "Lenovalin", "Pesovalin",
                                                                  "Ritovalin"),
              ("epilepsy", "nerve pain"), ("porphyria",), ("double vision", "gum overgrowth"), "ACE inhibitor"),
)

# The facts a question can ask for, each in two directions: from a drug to its value (`class_of`, `indication`, ...),
# and from a value to the one drug among the options that has it (`drug_of_class`, `drug_for`, ...); and
# `interaction`, from a drug to a drug of the class it interacts with. A question needs `STEPS[skill]` steps of the
# knowledge base: the class from the name's stem, then a class fact, then, for a drug among the options, the stem
# of every option.
SKILLS = ("class_of", "indication", "contraindication", "side_effect", "drug_of_class", "drug_for", "drug_to_avoid",
          "drug_causing", "interaction")
STEPS = {"class_of": 1, "indication": 2, "contraindication": 2, "side_effect": 2, "drug_of_class": 2, "drug_for": 3,
         "drug_to_avoid": 3, "drug_causing": 3, "interaction": 3}
# The class fact behind each skill that has one (what `_values` reads).
_FACT_OF = {"indication": "indication", "drug_for": "indication", "contraindication": "contraindication",
            "drug_to_avoid": "contraindication", "side_effect": "side_effect", "drug_causing": "side_effect"}
_DRUG_OPTIONS = ("drug_of_class", "drug_for", "drug_to_avoid", "drug_causing", "interaction")

_STEMS = {
    "class_of": "{drug} belongs to which drug class?",
    "indication": "{drug} is used to treat which condition?",
    "contraindication": "{drug} should be avoided in which condition?",
    "side_effect": "Which is a common side effect of {drug}?",
    "drug_of_class": "Which drug is {article} {value}?",
    "drug_for": "Which drug is used to treat {value}?",
    "drug_to_avoid": "Which drug should be avoided in {value}?",
    "drug_causing": "Which drug can cause {value}?",
    "interaction": "Which drug should not be combined with {drug}?",
}
# Each stem with its one placeholder (the drug, or the class / condition / effect, with its article) captured as
# `entity`.
_STEM_PATTERNS = {
    skill: re.compile(re.sub(r"\\\{\w+\\\}", "(?P<entity>.+)", re.escape(stem.replace("{article} ", ""))),
                      re.IGNORECASE)
    for skill, stem in _STEMS.items()
}
# How the KB states each fact of a class, for reasoning and messages.
_CLASS_FACTS = {
    "indication": "{plural} treat {value}",
    "contraindication": "{plural} should be avoided in {value}",
    "side_effect": "{plural} can cause {value}",
}
_CLASS_BY_NAME = {cls.name: cls for cls in KNOWLEDGE_BASE}


def _values(fact: str, cls: DrugClass) -> tuple[str, ...]:
    return {"indication": cls.indications, "contraindication": cls.contraindications,
            "side_effect": cls.side_effects}[fact]


# What the stem of each skill names (a drug; a class with its article; a condition or an effect), normalised -> its
# one class and the KB's spelling.
_ENTITIES: dict[str, dict[str, tuple[DrugClass, str]]] = {
    skill: {normalise_text(name): (cls, name) for cls in KNOWLEDGE_BASE for name in (
        (f"{cls.article} {cls.name}",) if skill == "drug_of_class"
        else _values(_FACT_OF[skill], cls) if skill in _DRUG_OPTIONS and skill != "interaction" else cls.drugs)}
    for skill in SKILLS
}


def _true_values(skill: str, cls: DrugClass) -> tuple[str, ...]:
    """The option texts the KB holds true for a question of `skill` whose stem names a drug of (or a value of)
    `cls`."""
    if skill == "class_of":
        return (cls.name,)
    if skill == "interaction":
        return _CLASS_BY_NAME[cls.interacts_with].drugs
    if skill in _DRUG_OPTIONS:
        return cls.drugs
    return _values(_FACT_OF[skill], cls)


def _reasoning(skill: str, subject: str, cls: DrugClass, key: str) -> str:
    """The KB's steps from the stem's `subject` to the keyed option `key`, in the order a reader takes them."""
    a_class = f"{cls.article} {cls.name}"
    if skill == "class_of":
        return f"The {cls.stem} stem marks {cls.plural}, so {subject} is {a_class}."
    if skill == "drug_of_class":
        return f"The {cls.stem} stem marks {cls.plural}, so {key} is {a_class}."
    if skill == "interaction":
        other = _CLASS_BY_NAME[cls.interacts_with]
        return (f"{subject} is {a_class}; {cls.plural} should not be combined with {other.plural}; "
                f"{key} is {other.article} {other.name}.")
    fact = _CLASS_FACTS[_FACT_OF[skill]]
    if skill in _DRUG_OPTIONS:
        first = fact.format(plural=cls.plural, value=subject)
        return f"{first[0].upper()}{first[1:]}; {key} is {a_class}."
    return f"{subject} is {a_class}; {fact.format(plural=cls.plural, value=key)}."


@dataclass(frozen=True)
class KbJudgement:
    """What the KB says about a question in one of the template forms."""

    skill: str
    correct: tuple[str, ...]  # letters of the options the KB holds true, in order
    reasons: tuple[str, ...]  # the KB's reasoning to each correct option
    known: str  # everything the KB holds true for the stem, e.g. "Zorivan: hypertension or angina"


def _stem_match(stem: str) -> tuple[str, DrugClass, str] | None:
    """(skill, the class the stem's entity belongs to, the entity as the KB spells it) of a stem in a template form
    that names something the KB knows; None otherwise."""
    for skill, pattern in _STEM_PATTERNS.items():
        # "Which drug is used to treat hives?" also fits drug_of_class's form, with an entity no class has.
        if (match := pattern.fullmatch(stem)) and (found := _ENTITIES[skill].get(normalise_text(match["entity"]))):
            return skill, *found
    return None


def kb_judgement(question: str) -> KbJudgement | None:
    """The KB's view of `question`; None if its stem is in no template form or names something the KB does not
    know. Options the KB does not know are false (closed world)."""
    stem, options = parse_options(question)
    matched = _stem_match(" ".join(stem.split()))
    if matched is None:
        return None
    skill, cls, subject = matched
    values = _true_values(skill, cls)
    by_text = {normalise_text(value): value for value in values}
    # Option by option, not by letter: a generated question may repeat a letter ("B. x" twice).
    true_options = [(letter, by_text[normalise_text(text)]) for letter, text in options
                    if normalise_text(text) in by_text]
    return KbJudgement(skill=skill, correct=tuple(letter for letter, _ in true_options),
                       reasons=tuple(_reasoning(skill, subject, cls, value) for _, value in true_options),
                       known=f"{subject}: {' or '.join(values)}")


def difficulty(question: str, reasoning: str) -> str | None:
    """A question's difficulty: how many knowledge-base steps it takes (`STEPS`), e.g. "3 steps"; None for a
    question in no KB form."""
    judgement = kb_judgement(question)
    return f"{STEPS[judgement.skill]} steps" if judgement is not None else None


def kb_answer(question: str) -> str | None:
    """The letter the KB says is correct; None if the question is in no template form, names something unknown in
    its stem, or has no option or more than one option that the KB holds true."""
    judgement = kb_judgement(question)
    if judgement is None or len(judgement.correct) != 1:
        return None
    return judgement.correct[0]


# ---------------------------------------------------------------------------------------------------------------
# Procedural questions


def _kb_question(rng: random.Random, skill: str) -> tuple[str, str, list[str], str]:
    """(stem, keyed option, three distractors, reasoning) of one question of `skill`."""
    cls = rng.choice(KNOWLEDGE_BASE)
    if skill == "drug_of_class":
        subject = cls.name
        stem = _STEMS[skill].format(article=cls.article, value=subject)
    elif skill in _DRUG_OPTIONS and skill != "interaction":
        subject = rng.choice(_values(_FACT_OF[skill], cls))
        stem = _STEMS[skill].format(value=subject)
    else:
        subject = rng.choice(cls.drugs)
        stem = _STEMS[skill].format(drug=subject)
    key = rng.choice(_true_values(skill, cls))
    # Distractors are values the stem does not make true: with facts disjoint across classes, exactly one option is
    # right. A question for one of a drug's facts has one distractor that is another kind of fact of the same
    # class (an indication asked, a side effect offered), so that knowing the class's facts is not enough without
    # knowing which is which. An interaction's distractors leave out the asked drug itself.
    right = set(_true_values(skill, cls))
    same_class = [value for fact in _CLASS_FACTS if fact != _FACT_OF.get(skill) for value in _values(fact, cls)] \
        if skill in _CLASS_FACTS else []
    near = rng.sample(same_class, 1) if same_class else []
    pool = [value for other in KNOWLEDGE_BASE if other is not cls or skill == "interaction"
            for value in _true_values(skill, other) if value not in right and value != subject]
    distractors = near + rng.sample(pool, 3 - len(near))
    rng.shuffle(distractors)
    return stem, key, distractors, _reasoning(skill, subject, cls, key)


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
                                answer=format_answer(LETTERS[position], key)))
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
        answer=format_answer(key, options[LETTERS.index(key)]),
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
        answer=format_answer(LETTERS[PUBMEDQA_DECISIONS.index(decision)], decision),
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
    """The option named after the first `####` of a student completion, as `B: text` (`B. text`, `B) text` too),
    or `B` where only a letter is given; None if there is none or it names no single letter A-D."""
    text = answer_text(completion)
    if not text:
        return None
    key = parse_key(text.split("\n", 1)[0])
    if key is None:
        return None
    return format_answer(*key) if key[1] else key[0]


def answers_match(predicted: str, expected: str) -> bool:
    """Whether two answers name the same option: by its text when both give one (exactly, up to case, spacing and a
    final full stop), else by letter. The text decides because it is the answer's content: a letter alone is
    right by chance one time in four, while an option's text is right only when it is that option."""
    predicted_key, expected_key = parse_key(predicted), parse_key(expected)
    if predicted_key is None or expected_key is None:
        return False
    if predicted_key[1] and expected_key[1]:
        return normalise_text(predicted_key[1]) == normalise_text(expected_key[1])
    return predicted_key[0] == expected_key[0]


def chosen_option(answer: str, question: str) -> str | None:
    """The letter of the option of `question` that `answer` names, as `answers_match` reads it: by its text when it
    gives one (None if no option has that text), else by its letter; None when it names no letter A-D."""
    key = parse_key(answer)
    if key is None:
        return None
    if not key[1]:
        return key[0]
    text = normalise_text(key[1])
    return next((letter for letter, option in parse_options(question)[1] if normalise_text(option) == text), None)


# ---------------------------------------------------------------------------------------------------------------
# The generator's view: the key written first


def _keyed_options(question: str, answer: str) -> tuple[str, list[str], str] | None:
    """(stem, option texts in order, the keyed option's text) of a question with 2-4 options lettered in order whose
    answer names one of them; None for anything else."""
    stem, options = parse_options(question)
    key = chosen_option(answer, question)
    letters = "".join(letter for letter, _ in options)
    if key is None or not 2 <= len(options) <= len(LETTERS) or letters != LETTERS[:len(options)]:
        return None
    return stem, [text for _, text in options], dict(options)[key]


def generator_view(question: str, reasoning: str, answer: str) -> tuple[str, str, str]:
    """A sample as the generator is shown it and taught to write it: the keyed option first, as A, the others after
    it in their order. A generator writes its options before its reasoning; with the key first, the option it has to
    get right is the one next to the stem that decides it, not one at a place it picks before it knows which drug
    it will reason about. `from_generator` puts the key back at a place of its own. A sample whose answer names no
    option is shown as written."""
    keyed = _keyed_options(question, answer)
    if keyed is None:
        return question, reasoning, answer
    stem, texts, key = keyed
    return format_question(stem, [key] + [text for text in texts if text != key]), reasoning, format_answer("A", key)


def from_generator(question: str, reasoning: str, answer: str) -> tuple[str, str, str]:
    """A generated sample in the domain's form: its options in an order drawn from the question's text (so the key
    lands on each letter equally often, and the same text always comes out the same), the answer relabelled to its
    option's new letter. A sample whose answer names no option, or whose options are not lettered in order, is left
    as written for verification to judge."""
    keyed = _keyed_options(question, answer)
    if keyed is None:
        return question, reasoning, answer
    stem, texts, key = keyed
    random.Random(question).shuffle(texts)  # a str seed is hashed with SHA-512: the same in every process
    return format_question(stem, texts), reasoning, format_answer(LETTERS[texts.index(key)], key)


# ---------------------------------------------------------------------------------------------------------------
# Verification and grading (the domain interface; see acqsynth.domains)


def verify(questions: list[str], reasonings: list[str], answers: list[str], rules: VerifyRules) -> list[Verdict]:
    from acqsynth.verify.mcq import verify_batch

    return verify_batch(questions, reasonings, answers, knowledge_base=rules.mcq_knowledge_base)


def grade(predicted: list[str | None], examples: pd.DataFrame, workers: int = 1,
          missing_layers: MissingLayers = "refuse") -> list[bool]:
    """Whether each predicted key is its example's key."""
    return graded_by_answer(answers_match, predicted, list(examples["answer"]))
