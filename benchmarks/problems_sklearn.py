"""Model-tuning problems on scikit-learn's bundled datasets (nothing is downloaded): the
cross-validated loss of an SVM, a random forest and gradient-boosted trees.

Every evaluation is deterministic (fixed folds, ``random_state=0``, one thread), so a
problem is a function of its parameters; the best value is unknown and the benchmark
estimates it from everything it saw.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from benchmarks.problem import Problem
from search import SearchSpace

__all__ = ["SKLEARN"]


@functools.cache
def _data(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    loaders = {
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
        "diabetes": datasets.load_diabetes,
    }
    x, y = loaders[name](return_X_y=True)
    return x, y


def _svm_error(params: Mapping[str, Any]) -> float:
    """1 - accuracy of an RBF SVM on standardized breast-cancer data, 5-fold CV."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    x, y = _data("breast_cancer")
    model = make_pipeline(
        StandardScaler(), SVC(C=float(params["C"]), gamma=float(params["gamma"]), kernel="rbf")
    )
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    return 1.0 - float(np.mean(cross_val_score(model, x, y, cv=folds)))


def _forest_loss(params: Mapping[str, Any]) -> float:
    """Log loss of a random forest on wine, 3-fold CV (probabilities clipped)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    x, y = _data("wine")
    model = RandomForestClassifier(
        n_estimators=int(params["n_estimators"]),
        max_depth=int(params["max_depth"]),
        min_samples_leaf=int(params["min_samples_leaf"]),
        max_features=float(params["max_features"]),
        criterion=str(params["criterion"]),
        random_state=0,
        n_jobs=1,
    )
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    return -float(np.mean(cross_val_score(model, x, y, cv=folds, scoring="neg_log_loss")))


def _boosting_error(params: Mapping[str, Any]) -> float:
    """Mean squared error / 1000 of histogram gradient boosting on diabetes, 3-fold CV."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.model_selection import KFold, cross_val_score

    x, y = _data("diabetes")
    model = HistGradientBoostingRegressor(
        max_iter=40,
        learning_rate=float(params["learning_rate"]),
        max_leaf_nodes=int(params["max_leaf_nodes"]),
        min_samples_leaf=int(params["min_samples_leaf"]),
        l2_regularization=float(params["l2_regularization"]),
        random_state=0,
    )
    folds = KFold(3, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = cross_val_score(model, x, y, cv=folds, scoring="neg_mean_squared_error")
    return -float(np.mean(scores)) / 1000.0


def _problem(
    name: str,
    objective: Callable[[Mapping[str, Any]], float],
    space: dict[str, Any],
    text: str,
    suite: str,
) -> Problem:
    return Problem(name, SearchSpace.from_dict(space), objective, None, 200, text, suite)


# suite as in benchmarks.problems_synthetic: "tune" was looked at while developing.
SKLEARN: dict[str, Callable[[], Problem]] = {
    "svm": lambda: _problem(
        "svm",
        _svm_error,
        {
            "C": {"type": "float", "low": 1e-3, "high": 1e3, "log": True},
            "gamma": {"type": "float", "low": 1e-5, "high": 10.0, "log": True},
        },
        "RBF SVM on breast cancer, 1 - accuracy (5-fold CV), 2-D log",
        "tune",
    ),
    "forest": lambda: _problem(
        "forest",
        _forest_loss,
        {
            "n_estimators": {"type": "int", "low": 10, "high": 100, "log": True},
            "max_depth": {"type": "int", "low": 1, "high": 20},
            "min_samples_leaf": {"type": "int", "low": 1, "high": 20},
            "max_features": {"type": "float", "low": 0.05, "high": 1.0},
            "criterion": {"type": "categorical", "choices": ["gini", "entropy"]},
        },
        "random forest on wine, log loss (3-fold CV), 5-D mixed",
        "holdout",
    ),
    "boosting": lambda: _problem(
        "boosting",
        _boosting_error,
        {
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
            "max_leaf_nodes": {"type": "int", "low": 2, "high": 64, "log": True},
            "min_samples_leaf": {"type": "int", "low": 1, "high": 100, "log": True},
            "l2_regularization": {"type": "float", "low": 1e-6, "high": 10.0, "log": True},
        },
        "gradient boosting on diabetes, MSE / 1000 (3-fold CV), 4-D mixed log",
        "holdout",
    ),
}
