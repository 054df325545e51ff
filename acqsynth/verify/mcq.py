"""Verification of medical multiple-choice samples: the question's form, the key, the reasoning, the knowledge base.

Reasoning rule, kept simple so that it is predictable for the generator: the reasoning is cut into clauses at
punctuation, "but" and line breaks; a clause that holds a negation ("not", "no", "never", "unlike", "rather than",
"rules out", any "n't", ...) outside the option texts it mentions speaks of those options as wrong. The keyed
option's text must occur in a clause without negation, and no other option's text may ("..., not asthma" is
fine). Occurrences are whole words, case-insensitive, a plural "s" allowed; an occurrence inside a longer option's
occurrence ("pain" inside "joint pain") counts for the longer option only.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Literal

from acqsynth.domains.mcq import (LETTERS, chosen_option, format_answer, kb_judgement, normalise_text, parse_key,
                                  parse_options)
from acqsynth.domains.sample import Verdict

_CLAUSE_SPLIT_RE = re.compile(r"[.;:,!?](?:\s+|$)|\s+but\s+|\n")
_NEGATION_RE = re.compile(
    r"\b(?:not|no|never|neither|nor|unlike|rather than|instead of|rules? out|excludes?|wrong|incorrect|cannot|"
    r"\w+n't)\b"
)


def _structure_problem(stem: str, options: list[tuple[str, str]]) -> str:
    """"" when the question is a stem and four distinct, non-empty options A-D; otherwise what is wrong."""
    if not options:
        return "question has no options; expected lines 'A. ...' to 'D. ...' after the stem"
    letters = "".join(letter for letter, _ in options)
    if letters != LETTERS:
        return f"question has options {', '.join(letters)}; expected exactly four options A-D in order"
    if not stem:
        return "question has no stem before its options"
    seen: dict[str, str] = {}
    for letter, text in options:
        normal = normalise_text(text)
        if not normal:
            return f"option {letter} is empty"
        if normal in seen:
            return f"options {seen[normal]} and {letter} are the same ({text})"
        seen[normal] = letter
    return ""


def _clause_mentions(clause: str, options: list[tuple[str, str]]) -> tuple[set[str], bool]:
    """(letters of the options `clause` mentions, whether it negates outside those mentions)."""
    spans = []
    for letter, text in options:
        pattern = r"(?<!\w)" + re.escape(normalise_text(text)) + r"s?(?!\w)"
        spans += [(match.start(), match.end(), letter) for match in re.finditer(pattern, clause)]
    # A mention inside a longer one ("pain" in "joint pain") belongs to the longer option.
    kept = [(start, end, letter) for start, end, letter in spans
            if not any(s <= start and end <= e and e - s > end - start for s, e, _ in spans)]
    rest = clause
    for start, end, _ in sorted(kept, reverse=True):
        rest = rest[:start] + " " + rest[end:]
    return {letter for _, _, letter in kept}, bool(_NEGATION_RE.search(rest))


def _reasoning_problem(reasoning: str, options: list[tuple[str, str]], key: str) -> str:
    texts = dict(options)
    stated: set[str] = set()
    mentioned: set[str] = set()
    for clause in _CLAUSE_SPLIT_RE.split(" ".join(reasoning.split()).casefold()):
        letters, negated = _clause_mentions(clause, options)
        mentioned |= letters
        if not negated:
            stated |= letters
    if key not in mentioned:
        return f"reasoning does not mention the keyed option {key} ({texts[key]})"
    if key not in stated:
        return f"reasoning mentions the keyed option {key} ({texts[key]}) only as wrong"
    if others := sorted(stated - {key}):
        return f"reasoning states option {others[0]} ({texts[others[0]]}) besides the key {key}; name it only as wrong"
    return ""


def verify_mcq_sample(question: str, reasoning: str, answer: str, knowledge_base: bool = False) -> Verdict:
    """Accept a generated sample only if the question has four distinct options A-D, the answer names one of them
    (by its text where it gives one, as grading reads it: `chosen_option`), the reasoning states the keyed option
    and no other (see the module docstring), and, for a question in one of the knowledge base's template forms, the
    key is the one option the knowledge base holds true. With `knowledge_base` (the procedural domain) a question
    in no template form, or naming what the knowledge base does not hold, is rejected: nothing can check it. A
    verified answer is kept as the letter with its option's text (`Verdict.answer` where that differs from the
    sample's)."""
    stem, options = parse_options(question)
    if problem := _structure_problem(stem, options):
        return Verdict(False, problem)
    texts = dict(options)
    parsed = parse_key(answer)
    if parsed is None:
        return Verdict(False, f"answer {answer.strip()!r} is not one option letter A-D")
    key = chosen_option(answer, question)
    if key is None:
        return Verdict(False, f"answer {answer.strip()!r} names no option: {parsed[1]!r} is none of A-D's texts")
    if not reasoning.strip():
        return Verdict(False, "reasoning is empty")
    if problem := _reasoning_problem(reasoning, options, key):
        return Verdict(False, problem)
    judgement = kb_judgement(question)
    if judgement is None and knowledge_base:
        return Verdict(False, f"question {stem[:80]!r} is in none of the knowledge base's forms or names what it does "
                              f"not hold, so nothing can check its key")
    if judgement is not None:
        if len(judgement.correct) > 1:
            facts = "; ".join(f"{fact.rstrip('.')} ({letter})"
                              for fact, letter in zip(judgement.reasons, judgement.correct))
            return Verdict(False, f"options {' and '.join(judgement.correct)} are all right per the knowledge base: "
                                  f"{facts}")
        if judgement.correct != (key,):
            if judgement.correct:
                truth = f"{judgement.reasons[0].rstrip('.')} ({judgement.correct[0]})"
            else:
                truth = f"it holds {judgement.known}, which no option names"
            return Verdict(False, f"key {key} contradicts the knowledge base: {truth}")
    canonical = format_answer(key, texts[key])
    checked = (f"knowledge base: only {key} is right" if judgement is not None
               else "knowledge base: not one of its question forms, not checked")
    return Verdict(True, "", None if canonical == answer.strip() else canonical,
                   evidence=f"four distinct options, the reasoning states only {key}; {checked}")


def verify_batch(questions: list[str], reasonings: list[str], answers: list[str],
                 knowledge_base: bool = False) -> list[Verdict]:
    if not len(questions) == len(reasonings) == len(answers):
        raise ValueError(
            f"questions, reasonings and answers differ in length: {len(questions)}, {len(reasonings)}, "
            f"{len(answers)}"
        )
    return [verify_mcq_sample(q, r, a, knowledge_base) for q, r, a in zip(questions, reasonings, answers)]


def self_consistency(
    votes: list[str | None], key: str, mode: Literal["relabel", "reject"], min_agreement: float
) -> tuple[Verdict, str]:
    """The answer model's vote over k sampled answers (each a letter, or None when an answer names none).

    The majority is clear when one letter alone has the most votes and at least `min_agreement` of all k. A clear
    majority for the key verifies; one for another letter relabels the sample to that letter ("relabel") or
    rejects it ("reject"); no clear majority rejects. Returns the verdict and the key to keep."""
    if mode not in ("relabel", "reject"):
        raise ValueError(f"mode must be 'relabel' or 'reject', got {mode!r}")
    if not 0 < min_agreement <= 1:
        raise ValueError(f"min_agreement must be in (0, 1], got {min_agreement}")
    if not votes:
        raise ValueError("votes must not be empty")
    parsed_key = parse_key(key)
    if parsed_key is None:
        raise ValueError(f"key must be one option letter A-D, got {key!r}")
    key = parsed_key[0]
    k = len(votes)
    counts = Counter(parsed[0] for vote in votes if vote is not None and (parsed := parse_key(vote))).most_common()
    if not counts:
        return Verdict(False, f"no clear majority: none of the {k} votes names an option"), key
    top, top_votes = counts[0]
    if len(counts) > 1 and counts[1][1] == top_votes:
        return Verdict(False, f"no clear majority: {top} and {counts[1][0]} tie at {top_votes}/{k} votes"), key
    # A ratio, not min_agreement * k: 0.7 * 10 is 7.000000000000001 in floating point.
    if top_votes / k < min_agreement:
        return Verdict(False, f"no clear majority: {top} has {top_votes}/{k} votes, below {min_agreement:g}"), key
    if top == key:
        return Verdict(True, "", evidence=f"answer model: {top_votes}/{k} votes for {key}"), key
    if mode == "relabel":
        return Verdict(True, "", evidence=f"answer model: relabelled {key} to {top} ({top_votes}/{k} votes)"), top
    return Verdict(False, f"answer model votes {top} ({top_votes}/{k}) against key {key}"), key
