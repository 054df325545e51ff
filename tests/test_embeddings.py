import numpy as np
import pytest

from acqsynth.acquisition.embeddings import StudentEmbedder, embedder, sentence_embedder


@pytest.fixture(scope="module")
def minilm():
    return sentence_embedder()


def test_minilm_loads_offline_unit_rows_and_cached(minilm, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    vectors = minilm.embed(["What is 2 + 3?", "Tom has 4 apples."])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert sentence_embedder() is minilm
    assert embedder("minilm") is minilm


def test_minilm_paraphrases_closer_than_unrelated(minilm):
    a, b, c = minilm.embed([
        "Sara buys 3 boxes of 12 pencils. How many pencils does she have?",
        "How many pencils does Sara have if she buys three boxes with twelve pencils each?",
        "The capital of France is Paris and it has many museums.",
    ])
    assert a @ b > a @ c + 0.3


@pytest.fixture(scope="module")
def tiny_student():
    from acqsynth.config import TinyModelConfig
    from acqsynth.models.tiny import build_llama, train_tokenizer

    texts = [f"Tom has {i} apples and buys {i + 3} more. How many apples?" for i in range(50)]
    tokenizer = train_tokenizer(texts, 300)
    model = build_llama(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64),
                        tokenizer, 128, 0)
    model.eval()
    return model, tokenizer


def test_student_embedder_unit_rows_independent_of_batch(tiny_student):
    model, tokenizer = tiny_student
    tokenizer.padding_side = "left"  # as generation leaves it; the embedder must not depend on it
    student = StudentEmbedder(model, tokenizer)
    texts = ["Tom has 4 apples.", "A much longer question about apples and 17 oranges bought on Monday?", "7"]
    together = student.embed(texts)
    assert together.shape == (3, 32) and together.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    alone = np.concatenate([student.embed([text]) for text in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    in_pairs = student.embed(texts, batch_size=2)
    np.testing.assert_allclose(together, in_pairs, atol=1e-5)


def test_embedder_student_kind(tiny_student):
    model, tokenizer = tiny_student

    class Student:
        pass

    student = Student()
    student.model, student.tokenizer = model, tokenizer
    assert isinstance(embedder("student", student), StudentEmbedder)
    with pytest.raises(ValueError, match="student"):
        embedder("student")
