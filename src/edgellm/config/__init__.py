"""The study's parameters: ``params.yaml``'s schema (:mod:`.schema`, compression recipes in :mod:`.recipes`,
shared pieces in :mod:`.base`) and its loader (:mod:`.load`)."""

from .load import DATA_ENV, data_dir, load_params
from .base import GENERATIVE_TASKS, NEEDS_IMATRIX, QUANT_TYPES, TASK_NAMES, ParamsError
from .recipes import CalibrationSettings, Compress, DepthPrune, DistillSettings, Recipe, UnstructuredPrune, WidthPrune
from .schema import (Data, Devices, EmulationCheckSettings, Evaluate, Execution, GenerationSettings, HostPower, HubModel, Imatrix, LocalModel,
                     ModelSpec, Params, PerplexitySettings, Profile, PypiGGUFModel, Quantization, Report, Variant,
                     checkpoint_name, resolve_variant, split_variant, variant_name)

__all__ = ["DATA_ENV", "GENERATIVE_TASKS", "NEEDS_IMATRIX", "QUANT_TYPES", "TASK_NAMES", "CalibrationSettings", "Compress",
           "Data", "DepthPrune", "Devices", "DistillSettings", "EmulationCheckSettings", "Evaluate", "Execution", "GenerationSettings",
           "HostPower",
           "HubModel", "Imatrix", "LocalModel", "ModelSpec", "Params", "ParamsError", "PerplexitySettings", "Profile",
           "PypiGGUFModel", "Quantization", "Recipe", "Report", "UnstructuredPrune", "Variant", "WidthPrune",
           "checkpoint_name", "data_dir", "load_params", "resolve_variant", "split_variant", "variant_name"]
