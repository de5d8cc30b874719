"""The vocabulary the feature contract is written in, and the views derived from it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal


@dataclass(frozen=True)
class Numeric:
    """A number, optionally bounded; `integer=True` requires whole numbers.

    `segment_bins` (increasing inner edges, e.g. (30, 45, 65)) asks evaluation to report the
    model's metrics per band ("< 30", "30 to < 45", ..., ">= 65"); `protected=True` marks an
    attribute the model must not treat unfairly, and needs bands.
    """

    name: str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    nullable: bool = True
    segment_bins: tuple[float, ...] = ()
    protected: bool = False

    def bands(self) -> list[str]:
        """The labels of the segment bands, in order."""
        edges = [f"{edge:g}" for edge in self.segment_bins]
        if not edges:
            return []
        middle = [f"{low} to < {high}" for low, high in pairwise(edges)]
        return [f"< {edges[0]}", *middle, f">= {edges[-1]}"]


@dataclass(frozen=True)
class Categorical:
    """One of a fixed set of string values.

    `segment=True` asks evaluation to report the model's metrics for each value and the gap
    between them; `protected=True` marks an attribute the model must not treat unfairly (it
    is reported as a segment too, and named as protected in the model card).
    """

    name: str
    description: str
    categories: tuple[str, ...]
    nullable: bool = True
    segment: bool = False
    protected: bool = False


Feature = Numeric | Categorical


@dataclass(frozen=True)
class Target:
    """What the model predicts: class labels for classification, a number for regression.

    Class labels are whole numbers or strings (not a mix), in any order. The model reports
    them sorted (`labels`): its probabilities come in that order, and with two classes the
    greater label (1, or "yes" before "no") is the positive class.
    """

    name: str
    description: str
    kind: Literal["classification", "regression"]
    classes: tuple[int, ...] | tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    @property
    def text_labels(self) -> bool:
        """Whether the class labels are strings (otherwise whole numbers)."""
        return any(isinstance(label, str) for label in self.classes)

    @property
    def multiclass(self) -> bool:
        return self.kind == "classification" and len(self.classes) > 2

    @property
    def labels(self) -> list[int] | list[str]:
        """The classes in the model's order (sorted)."""
        return sorted(self.classes)

    @property
    def positive(self) -> int | str | None:
        """The positive class of a binary target (the greater label); None otherwise."""
        if self.kind != "classification" or self.multiclass:
            return None
        return self.labels[-1]


@dataclass(frozen=True)
class Contract:
    """Features, target and an optional identifier column that is carried through, not used."""

    features: tuple[Feature, ...]
    target: Target
    identifier: str | None = None

    def __post_init__(self) -> None:
        self._check_target()
        names = [f.name for f in self.features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"feature contract: duplicate feature names {duplicates}")
        if self.target.name in names:
            raise ValueError(f"feature contract: target '{self.target.name}' is also a feature")
        for feature in self.features:
            if isinstance(feature, Categorical) and not feature.categories:
                raise ValueError(f"feature contract: '{feature.name}' has no categories")
            if (
                isinstance(feature, Numeric)
                and feature.minimum is not None
                and feature.maximum is not None
                and feature.minimum > feature.maximum
            ):
                raise ValueError(f"feature contract: '{feature.name}' has minimum > maximum")
            if isinstance(feature, Numeric):
                bins = list(feature.segment_bins)
                if bins != sorted(set(bins)):
                    raise ValueError(
                        f"feature contract: segment_bins of '{feature.name}' must increase"
                    )
                if feature.protected and not bins:
                    raise ValueError(
                        f"feature contract: protected numeric '{feature.name}' needs "
                        "segment_bins to be compared across bands"
                    )

    def _check_target(self) -> None:
        target = self.target
        if target.kind == "regression":
            return
        labels = list(target.classes)
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise ValueError(
                f"feature contract: target '{target.name}' needs two or more distinct classes"
            )
        if len({type(label) for label in labels}) != 1 or not isinstance(labels[0], int | str):
            raise ValueError(
                f"feature contract: the classes of '{target.name}' must be all whole numbers "
                "or all strings"
            )

    def fingerprint(self) -> str:
        """A short hash of what a model reads and answers: the features' names, types and
        categories, the target and its classes. Descriptions, ranges and segment marks leave it
        unchanged: a model trained before such an edit still fits the contract."""
        declared = [
            (
                f.name,
                "integer" if getattr(f, "integer", False) else type(f).__name__,
                *getattr(f, "categories", ()),
            )
            for f in self.features
        ]
        target = (self.target.name, self.target.kind, *map(repr, self.target.classes))
        text = json.dumps([declared, target, self.identifier])
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric(self) -> list[str]:
        return [f.name for f in self.features if isinstance(f, Numeric)]

    @property
    def integers(self) -> list[str]:
        """The numeric features that hold whole numbers."""
        return [f.name for f in self.features if isinstance(f, Numeric) and f.integer]

    @property
    def categorical(self) -> list[str]:
        return [f.name for f in self.features if isinstance(f, Categorical)]

    @property
    def segments(self) -> list[str]:
        """Features evaluated per value (or band): marked segment, protected or binned."""
        return [
            f.name
            for f in self.features
            if f.protected or (f.segment if isinstance(f, Categorical) else bool(f.segment_bins))
        ]

    @property
    def protected(self) -> list[str]:
        return [f.name for f in self.features if f.protected]

    def feature(self, name: str) -> Feature:
        """The declaration of feature `name`."""
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(f"no feature '{name}' in the contract")
