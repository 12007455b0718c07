"""Compression recipes in ``params.yaml``: pruning (unstructured, depth, width), distillation, calibration."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from .base import Name, Share, Strict, Tier, check_types

class UnstructuredPrune(Strict):
    """Zero weights (shapes unchanged): ``sparsity`` (unstructured) or ``pattern`` (N:M)."""

    method: Literal["magnitude", "wanda"]
    sparsity: Share | None = None
    pattern: Literal["2:4", "4:8"] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> UnstructuredPrune:
        if (self.sparsity is None) == (self.pattern is None):
            raise ValueError(f"{self.method} pruning needs exactly one of sparsity (e.g. 0.5) or pattern (e.g. '2:4')")
        return self


class DepthPrune(Strict):
    """Drop whole decoder blocks, the least important on calibration text."""

    method: Literal["depth"]
    layers: Annotated[int, Field(ge=1)]
    importance: Literal["block_influence", "angular", "kl"] = "block_influence"


Dim = Annotated[int, Field(ge=1)] | Share


class WidthPrune(Strict):
    """Remove hidden channels, MLP neurons and attention heads by activation importance.

    Each target is a size (int) or a share of the original (0 < float < 1);
    ``align`` rounds hidden and MLP sizes down to a multiple (256 lets
    llama.cpp's K-quants apply to those rows instead of falling back).
    """

    method: Literal["width"]
    hidden_size: Dim | None = None
    intermediate_size: Dim | None = None
    num_heads: Annotated[int, Field(ge=1)] | None = None
    num_kv_heads: Annotated[int, Field(ge=1)] | None = None
    align: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="after")
    def _something(self) -> WidthPrune:
        if all(v is None for v in (self.hidden_size, self.intermediate_size, self.num_heads, self.num_kv_heads)):
            raise ValueError("width pruning needs at least one of hidden_size, intermediate_size, num_heads, num_kv_heads")
        return self


PruneSpec = Annotated[UnstructuredPrune | DepthPrune | WidthPrune, Field(discriminator="method")]


class DistillSettings(Strict):
    """Knowledge distillation from the base model (the teacher) into the pruned student."""

    text: Literal["lambada", "teacher"] = "lambada"   # calibration text, or text the teacher generates
    tokens: Annotated[int, Field(ge=1)] = 8192          # training budget
    seq_len: Annotated[int, Field(ge=8)] = 128
    batch_size: Annotated[int, Field(ge=1)] = 4
    lr: Annotated[float, Field(gt=0)] = 5e-4
    warmup: Annotated[float, Field(ge=0, lt=1)] = 0.05
    temperature: Annotated[float, Field(gt=0)] = 1.0
    ce_weight: Annotated[float, Field(ge=0, le=1)] = 0.0
    train_embeddings: bool = False
    checkpoint_every: Annotated[int, Field(ge=1)] = 8
    eval_every: Annotated[int, Field(ge=1)] = 1000000
    heldout_rows: Annotated[int, Field(ge=1)] = 8

    @property
    def steps(self) -> int:
        """Optimiser steps the token budget buys (at least one)."""
        return max(1, self.tokens // (self.seq_len * self.batch_size))


class Recipe(Strict):
    """Pruning, then distillation; at least one of them."""

    prune: PruneSpec | None = None
    distill: DistillSettings | None = None
    #: evaluation tier of the recipe's ``compress.types`` variants (its ladder variants are frontier)
    tier: Tier = "frontier"
    #: the base models the recipe is applied to (null: every one)
    models: Annotated[list[Name], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Recipe:
        if self.prune is None and self.distill is None:
            raise ValueError("a recipe needs prune, distill or both")
        return self


class CalibrationSettings(Strict):
    """Text for activation statistics (LAMBADA development: no test set)."""

    tokens: Annotated[int, Field(ge=16)] = 4096
    seq_len: Annotated[int, Field(ge=8)] = 256


class Ladder(Strict):
    """Recipes also quantized across more types (frontier tier): where the type names mean what they say."""

    recipes: list[Name] = []
    types: list[str] = []

    @field_validator("types")
    @classmethod
    def _known_types(cls, types: list[str]) -> list[str]:
        return check_types(types)


class Compress(Strict):
    #: GGUF types every compressed checkpoint is quantized to
    types: Annotated[list[str], Field(min_length=1)] = ["Q4_K_M"]
    calibration: CalibrationSettings = CalibrationSettings()
    #: recipe name -> recipe; applied to every base model, or to those its ``models`` names
    recipes: dict[Name, Recipe] = {}
    ladder: Ladder = Ladder()

    @field_validator("types")
    @classmethod
    def _known_types(cls, types: list[str]) -> list[str]:
        return check_types(types)

    @model_validator(mode="after")
    def _ladder(self) -> Compress:
        unknown = [r for r in self.ladder.recipes if r not in self.recipes]
        if unknown:
            raise ValueError(f"compress.ladder.recipes names {unknown}, not in compress.recipes {sorted(self.recipes)}")
        both = [t for t in self.ladder.types if t in self.types]
        if both:
            raise ValueError(f"compress.ladder.types {both} are already in compress.types")
        return self
