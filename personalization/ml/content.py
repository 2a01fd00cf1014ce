"""Content-based similarity: TF-IDF over each item's title, description, tags and category.

A visitor's content vector is the decayed sum of the vectors of the items in their history, and
its score for item j is that vector's dot product with j's vector. That is linear in the history,
so it equals the sum of the history items' rows of the item x item cosine matrix: keeping the top-N
of those rows (computed here) lets online scoring share the collaborative filter's sparse sum.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from .catalog import CatalogItem
from .similarity import BLOCK, assemble_rows, top_n_per_row


def item_text(item: CatalogItem) -> str:
    """Title and tags count twice: they are short and say more per word than a description."""
    tags = " ".join(item.tags)
    category = item.category.replace("-", " ")
    return " ".join((item.title, item.title, tags, tags, category, item.description))


def tfidf_vectors(catalog: Sequence[CatalogItem]) -> sp.csr_matrix:
    """Item x term TF-IDF matrix, rows L2-normalised (empty texts give empty rows)."""
    texts = [item_text(item) for item in catalog]
    if not any(text.strip() for text in texts):
        return sp.csr_matrix((len(texts), 1), dtype=np.float32)
    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=1, max_df=0.5, stop_words="english", dtype=np.float32)
    try:
        return vectorizer.fit_transform(texts).tocsr()
    except ValueError:  # every word was a stop word or too common: no content signal
        return sp.csr_matrix((len(texts), 1), dtype=np.float32)


def content_neighbours(vectors: sp.csr_matrix, n_neighbours: int) -> sp.csr_matrix:
    """Item x item cosine similarity of the TF-IDF vectors, each target item's top-N sources (the
    similarity is symmetric, so that is each row's top-N transposed)."""
    n_items = vectors.shape[0]
    parts = []
    for start in range(0, n_items, BLOCK):
        stop = min(start + BLOCK, n_items)
        dots = (vectors[start:stop] @ vectors.T).toarray()
        dots[np.arange(stop - start), np.arange(start, stop)] = 0.0
        parts.append(top_n_per_row(dots, n_neighbours, start))
    return assemble_rows(parts, n_items).T.tocsr()
