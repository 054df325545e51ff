"""All acquisition rewards of a batch of samples on one student. GRPO's reward and the acquisition_score stage both
score through `AcquisitionScorer`, so a rollout and a dataset row get the same numbers for the same sample."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from acqsynth.config import AcquisitionScoreConfig
from acqsynth.domains import domain_module
from acqsynth.domains.sample import student_completion, student_prompt, student_reasoning
from acqsynth.models.loading import LoadedModel


def reward_ranges(config: AcquisitionScoreConfig) -> dict[str, tuple[float | None, float | None]]:
    """The range of each raw reward (None: unbounded), for normalisation bounds and quality gates."""
    return {
        "confidence": config.confidence_clip,
        "proximity": (-1.0, 1.0),
        "diversity": (0.0, None),
        "gradient_magnitude": (0.0, None),
        "answer_variance": (0.0, 1.0),
        "learnability": (0.0, 1.0),
    }


@dataclass
class AcquisitionScorer:
    """The student, the seed centroids (proximity) and the archive of admitted questions (diversity)."""

    student: LoadedModel
    config: AcquisitionScoreConfig
    domain: str = "math"  # how the student's sampled answers are read and compared (answer variance)
    centroids: np.ndarray | None = None
    archive: object | None = None  # a DiversityArchive; loaded lazily with the embedder
    _embedder: object | None = field(default=None, repr=False)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        from acqsynth.acquisition.embeddings import embedder

        if self._embedder is None:
            self._embedder = embedder(self.config.embedder, self.student)
        return self._embedder.embed(list(texts))

    def start_archive(self, questions: Sequence[str]) -> None:
        from acqsynth.acquisition.diversity import DiversityArchive

        self.archive = DiversityArchive()
        self.archive.admit(self.embed(questions))

    def scores(self, questions: Sequence[str], reasonings: Sequence[str], answers: Sequence[str],
               names: Iterable[str], admit: bool = True,
               embeddings: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The named raw rewards of each sample; with `admit`, the questions then join the diversity archive.
        `embeddings` of the questions, when the caller already has them."""
        names = list(names)
        cfg = self.config
        # The student reads each sample as its domain shows it to the student (`student_view`); proximity and
        # diversity embed the questions as written, as the seed centroids do.
        module = domain_module(self.domain)
        viewed = [module.student_view(q, r, a) for q, r, a in zip(questions, reasonings, answers, strict=True)]
        prompts = [student_prompt(q) for q, _, _ in viewed]
        reasonings = [r for _, r, _ in viewed]
        answers = [a for _, _, a in viewed]
        completions = [student_completion(r, a) for r, a in zip(reasonings, answers, strict=True)]
        result: dict[str, np.ndarray] = {}
        if not questions:
            return {name: np.zeros(0) for name in names}
        if "confidence" in names:
            from acqsynth.acquisition.confidence import confidence_rewards

            # The margin over the answer's own tokens, the reasoning read as context: the template and the
            # reasoning's wording would otherwise drown the signal.
            result["confidence"] = confidence_rewards(
                self.student, [p + student_reasoning(r) for p, r in zip(prompts, reasonings, strict=True)],
                [f" {a}" for a in answers], cfg.confidence_clip, cfg.batch_size, cfg.max_length)
        if "gradient_magnitude" in names:
            from acqsynth.acquisition.gradient_magnitude import gradient_norms

            result["gradient_magnitude"] = np.asarray(
                gradient_norms(self.student, prompts, completions, cfg.batch_size, cfg.max_length), dtype=np.float64)
        if "answer_variance" in names or "learnability" in names:  # one set of k student answers for both
            from acqsynth.acquisition.answer_variance import answer_variance_rewards, sample_answers
            from acqsynth.acquisition.learnability import learnability_rewards

            sampled = sample_answers(self.student, prompts, cfg.answer_variance_samples,
                                     cfg.answer_variance_temperature, cfg.max_new_tokens, cfg.batch_size)
            extracted = [[module.extract_answer(text) for text in group] for group in sampled]
            if "answer_variance" in names:
                result["answer_variance"] = answer_variance_rewards(extracted, module.answers_match)
            if "learnability" in names:
                result["learnability"] = learnability_rewards(extracted, answers, module.answers_match)
        if "proximity" in names or "diversity" in names:
            if embeddings is None:
                embeddings = self.embed(questions)
            if "proximity" in names:
                from acqsynth.acquisition.proximity import proximity_rewards

                if self.centroids is None:
                    raise ValueError("proximity needs the seed centroids (stage seed_centroids)")
                result["proximity"] = proximity_rewards(embeddings, self.centroids).astype(np.float64)
            if "diversity" in names:
                if self.archive is None:
                    raise ValueError("diversity needs an archive of admitted questions; call start_archive first")
                result["diversity"] = self.archive.gains(embeddings).astype(np.float64)
                if admit:
                    self.archive.admit(embeddings)
        return result
