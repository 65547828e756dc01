"""The graded cells of notebook 06 (weights): each plausible mistake fails exactly its own cells, and
correct answers written another way (PCA by the covariance's eigenvectors, ...) keep full marks.

The solutions passing and the blank release failing every cell are tested with the other notebooks
(test_notebook_grading's STEMS). The graded cells use no model and no data: only `pca` and
`normalize_per_image` on small arrays, so a student's training run cannot cost points here. The
one-line mistakes (WEIGHTS_MISTAKES) are in tests/answer_variants.py, with the other notebooks'.
"""

from __future__ import annotations

import pytest

from answer_variants import COMPONENTS, PROJECTION, VARIANCE, WEIGHTS_MISTAKES
from conftest import graded_cell_ids
from grading_helpers import failing_cells, mutate

STEM = "06_weights"


# Whole answers that are wrong in ways a one-line change cannot express.
PCA_EIGH_ASCENDING = '''
def pca(X, k):
    centered = X - X.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(centered.T @ centered / len(X))
    components = eigenvectors[:, :k].T          # eigh sorts increasingly: these are the smallest
    return components, centered @ components.T, eigenvalues[:k] / eigenvalues.sum()
'''
PCA_GRAM_DIVIDES_BY_ZERO = '''
def pca(X, k):
    centered = X - X.mean(axis=0)
    eigenvalues, u = np.linalg.eigh(centered @ centered.T)   # N x N: cheap when N < D
    order = np.argsort(eigenvalues)[::-1][:k]
    components = (centered.T @ u[:, order] / np.sqrt(eigenvalues[order])).T
    return components, centered @ components.T, eigenvalues[order] / eigenvalues.sum()
'''
WRONG_ANSWERS = {
    "pca: eigenvectors of the covariance in eigh's increasing order": (
        "pca", PCA_EIGH_ASCENDING, {COMPONENTS, PROJECTION, VARIANCE}),
    "pca: components from the Gram matrix, divided by zero singular values (only hidden tests see it)": (
        "pca", PCA_GRAM_DIVIDES_BY_ZERO, {COMPONENTS}),  # the data along them is still ~0: right
}


@pytest.mark.parametrize("mistake", sorted(WEIGHTS_MISTAKES))
def test_weights_mistake_loses_exactly_its_points(mistake):
    gid, old, new, expected = WEIGHTS_MISTAKES[mistake]
    assert failing_cells(STEM, mutate(STEM, gid, old, new)) == expected


@pytest.mark.parametrize("mistake", sorted(WRONG_ANSWERS))
def test_wrong_whole_answer_loses_exactly_its_points(mistake):
    gid, source, expected = WRONG_ANSWERS[mistake]
    assert failing_cells(STEM, {gid: source}) == expected


def test_hidden_tests_catch_a_pca_that_fails_on_rank_deficient_data():
    gid, source, expected = WRONG_ANSWERS[
        "pca: components from the Gram matrix, divided by zero singular values (only hidden tests see it)"]
    assert failing_cells(STEM, {gid: source}, hidden=False) == set()
    assert failing_cells(STEM, {gid: source}) == expected


def test_every_graded_cell_is_targeted_by_some_mistake():
    targeted = set().union(*(m[3] for m in WEIGHTS_MISTAKES.values()), *(m[2] for m in WRONG_ANSWERS.values()))
    assert set(graded_cell_ids(STEM)) == targeted


# Correct answers written differently from the reference: each must pass every graded cell.
WEIGHTS_ALTERNATIVES = {
    "pca by eigh of the covariance (N - 1), sorted decreasingly": ("pca", '''
def pca(X, k):
    mean = np.mean(X, axis=0, keepdims=True)
    cov = np.cov(X, rowvar=False, ddof=1).reshape(X.shape[1], X.shape[1])
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    order = np.argsort(eigenvalues)[::-1]
    top = eigenvectors[:, order[:k]]
    ratio = np.clip(eigenvalues[order[:k]], 0.0, None) / np.trace(cov)
    return top.T, (X - mean) @ top, ratio
'''),
    "pca by a full SVD, projection as U * s": ("pca", '''
def pca(X, k):
    Xc = X - X.mean(0)
    U, s, Vt = np.linalg.svd(Xc, full_matrices=True)
    return Vt[:k, :], U[:, :k] * s[:k], (s[:k] ** 2) / np.sum(s ** 2)
'''),
    "pca by the SVD of the transpose, signs made deterministic": ("pca", '''
def pca(X, k):
    centred = X - np.mean(X, axis=0)
    u, s, _ = np.linalg.svd(centred.T, full_matrices=False)
    components = u[:, :k].T
    flip = np.sign(components[np.arange(k), np.argmax(np.abs(components), axis=1)])
    components = components * flip[:, None]
    total = np.sum(centred ** 2)
    return components, centred @ components.T, (s[:k] ** 2) / total
'''),
    "normalize with np.divide(where=...) on a flat copy": ("normalize", '''
def normalize_per_image(images):
    flat = np.array(images, dtype=float).reshape(len(images), -1)
    peak = np.max(np.abs(flat), axis=1, keepdims=True)
    out = np.divide(flat, peak, out=np.zeros_like(flat), where=peak > 0)
    return out.reshape(np.shape(images))
'''),
    "normalize with a loop and a tiny epsilon": ("normalize", '''
def normalize_per_image(images):
    result = np.empty(np.shape(images), dtype=np.result_type(images, np.float32))
    for n, image in enumerate(images):
        result[n] = image / (np.abs(image).max() + 1e-12)
    return result
'''),
}


@pytest.mark.parametrize("style", sorted(WEIGHTS_ALTERNATIVES))
def test_correct_weights_code_in_other_styles_gets_full_marks(style):
    gid, source = WEIGHTS_ALTERNATIVES[style]
    assert failing_cells(STEM, {gid: source}) == set()
