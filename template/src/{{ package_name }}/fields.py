"""The vocabulary the feature contract is written in, and the views derived from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Numeric:
    """A number, optionally bounded; `integer=True` requires whole numbers."""

    name: str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    nullable: bool = True


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
    """What the model predicts: class labels for classification, a number for regression."""

    name: str
    description: str
    kind: Literal["classification", "regression"]
    classes: tuple[int, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class Contract:
    """Features, target and an optional identifier column that is carried through, not used."""

    features: tuple[Feature, ...]
    target: Target
    identifier: str | None = None

    def __post_init__(self) -> None:
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

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric(self) -> list[str]:
        return [f.name for f in self.features if isinstance(f, Numeric)]

    @property
    def categorical(self) -> list[str]:
        return [f.name for f in self.features if isinstance(f, Categorical)]

    @property
    def segments(self) -> list[str]:
        """Categorical features evaluated per value: those marked segment or protected."""
        return [
            f.name
            for f in self.features
            if isinstance(f, Categorical) and (f.segment or f.protected)
        ]

    @property
    def protected(self) -> list[str]:
        return [f.name for f in self.features if isinstance(f, Categorical) and f.protected]
