"""The tables ``dvc.yaml`` iterates over (``results/pipeline.yaml``), derived from a valid :class:`Params`.

Each entry carries what defines its stages' outputs and nothing else, so that DVC reruns a stage only when
that changes. A base model's entry holds its source (not its ``types``: the models stage never reads them);
a compressed checkpoint's holds its recipe's pruning and distillation (not its ``tier`` or ``models``: which
bases get a recipe decides which checkpoints exist, not what any of them holds). Scoping a recipe to some
models, or giving a model its own types, therefore adds and removes stages and reruns none of the others.
"""

from __future__ import annotations

from .schema import Params, Variant


def variant_spec(p: Params, v: Variant) -> str:
    """The params key that defines a variant: its type's entry, its recipe, or the ladder."""
    if v.recipe is None:
        return f"quantization.types.{v.qtype}"
    if v.qtype in p.compress.types:
        return f"compress.recipes.{v.recipe}"
    return "compress.ladder"


def tier_keys(p: Params, tier: str) -> dict[str, str]:
    """The params keys a tier's evaluation reads: its task list, and where its item counts come from."""
    if tier == "reference":
        return {"tier_tasks": "evaluate.tasks", "tier_items": "evaluate.tasks"}
    own = f"evaluate.tiers.{tier}"
    full = any(n is None for n in p.evaluate.tiers.get(tier, {}).values())
    return {"tier_tasks": own, "tier_items": "evaluate.tasks" if full else own}


def model_source(p: Params, model: str) -> dict:
    """What the models stage reads of a base model's entry: everything but the types it is quantized to."""
    return p.models[model].model_dump(mode="json", exclude={"types"})


def recipe_content(p: Params, recipe: str) -> dict:
    """What the compress stage reads of a recipe: its pruning and its distillation."""
    return p.compress.recipes[recipe].model_dump(mode="json", include={"prune", "distill"})


def pipeline_table(p: Params) -> dict:
    """Base models, checkpoints, compressed ones, variants, and the deployed variants, each entry with the
    params keys and values that define it (a stage depends on its own entry, never on the whole table).
    ``dvc.yaml`` interpolates nothing else: a typo reaches the params stage's message."""
    ckpts = p.checkpoints()
    checkpoints = {name: {"model": m, "recipe": r, "spec": f"models.{m}" if r is None else f"compress.recipes.{r}",
                          "imatrix": r is None or p.needs_imatrix(name)}
                   for name, (m, r) in ckpts.items()}
    compressed = {name: {"model": m, "recipe": r, "spec": f"compress.recipes.{r}", **recipe_content(p, r)}
                  for name, (m, r) in ckpts.items() if r is not None}
    variants = {v.name: {"model": v.base, "checkpoint": v.checkpoint, "recipe": v.recipe, "type": v.qtype,
                         "tier": v.tier, "spec": variant_spec(p, v), **tier_keys(p, v.tier)}
                for v in p.all_variants()}
    deployed = {name: row for name, row in variants.items() if row["tier"] != "frontier"}
    # the KV-cache measurement: the deployed variants of the base models themselves (the reference and main types)
    kv_cache = {name: row for name, row in deployed.items() if row["recipe"] is None}
    models = {m: {"spec": f"models.{m}", "source": model_source(p, m)} for m in p.models}
    return {"pipeline": {"kl_base": p.evaluate.kl_base, "models": models, "checkpoints": checkpoints,
                         "compressed": compressed, "variants": variants, "deployed": deployed,
                         "kv_cache": kv_cache}}
