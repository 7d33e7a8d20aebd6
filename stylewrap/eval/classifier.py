"""p_style: how sure a character n-gram classifier, trained at eval time on the style's own plain
and styled text, is that an answer is styled.

scikit-learn does the work: `TfidfVectorizer` over character 1-3-grams (no tokenizer, so Chinese
and English alike), `LogisticRegression` for a calibrated-enough probability, `roc_auc_score` on
a held-out fifth so the report can say how far to trust it. The split keeps the two sides of a
pair together (`GroupShuffleSplit`): a held-out styled answer never has its own plain twin in the
training part.
"""

from __future__ import annotations

from dataclasses import dataclass

from stylewrap.errors import InputError

HELD_OUT = 0.2
MAX_PAIRS = 6000         # enough for an AUC above 0.97 on TslDial; more only costs time


@dataclass
class StyleClassifier:
    pipeline: object
    auc: float          # held-out ROC AUC
    train_rows: int
    held_out_rows: int
    source: str

    def p_style(self, texts: list[str]) -> list[float]:
        return [float(p) for p in self.pipeline.predict_proba(texts)[:, 1]]


def _pipeline(seed: int):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2),
                         LogisticRegression(C=4.0, max_iter=2000, random_state=seed))


def train_style_classifier(pairs: list[tuple[str, str]], *, source: str, seed: int = 0) -> StyleClassifier:
    """`pairs`: (plain, styled) twins; a side may be "" when only the other is known."""
    import numpy as np
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupShuffleSplit

    rng = np.random.default_rng(seed)
    if len(pairs) > MAX_PAIRS:
        pairs = [pairs[i] for i in sorted(rng.choice(len(pairs), MAX_PAIRS, replace=False))]
    texts, labels, groups = [], [], []
    for group, (plain, styled) in enumerate(pairs):
        for text, label in ((plain, 0), (styled, 1)):
            if text.strip():
                texts.append(text)
                labels.append(label)
                groups.append(group)
    labels_array = np.asarray(labels)
    if min((labels_array == 0).sum(), (labels_array == 1).sum()) < 10:
        raise InputError(f"too little style data to train the p_style classifier: {source}",
                         hint="it needs at least 10 plain and 10 styled answers")
    train, test = next(GroupShuffleSplit(n_splits=1, test_size=HELD_OUT, random_state=seed).split(texts, labels, groups))
    held_out = _pipeline(seed).fit([texts[i] for i in train], labels_array[train])
    scores = held_out.predict_proba([texts[i] for i in test])[:, 1]
    auc = float(roc_auc_score(labels_array[test], scores)) if len(set(labels_array[test])) == 2 else float("nan")
    # the held-out part measured the trust; the final model learns from everything
    final = _pipeline(seed).fit(texts, labels_array)
    return StyleClassifier(pipeline=final, auc=auc, train_rows=len(train), held_out_rows=len(test), source=source)
