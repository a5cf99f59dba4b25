"""Which serving profile a container kind gets (:mod:`catkit.serving.frameworks` explains them).

scikit-learn and XGBoost single-model serving with a user script run on sagemaker-containers
(:class:`~catkit.serving.frameworks.ContainersProfile`); XGBoost without ``SAGEMAKER_PROGRAM`` is
the built-in algorithm (:mod:`catkit.serving.xgboost_algorithm`); TensorFlow Serving and Hugging
Face have their own (:mod:`catkit.serving.hub_profiles`); everything else - custom images,
PyTorch, multi-model framework containers - follows the sagemaker-inference-toolkit
(:class:`~catkit.serving.frameworks.ToolkitProfile`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from catkit.serving.containers import KINDS, ContainerKind, user_program
from catkit.serving.frameworks import ContainersProfile, Profile, ToolkitProfile
from catkit.serving.hub_profiles import HuggingFaceProfile, TensorFlowServingProfile
from catkit.serving.xgboost_algorithm import XGBoostAlgorithmProfile


def profile_for(kind: str | ContainerKind, env: Mapping[str, str] | None = None, *,
                multi_model: bool = False) -> Profile:
    """The :class:`~catkit.serving.frameworks.Profile` of a container kind (name or
    :class:`~catkit.serving.containers.ContainerKind`) with the container's environment ``env``
    (default: this process's)."""
    k = KINDS[kind] if isinstance(kind, str) else kind
    environ = dict(env if env is not None else os.environ)
    if k.name in ("sklearn", "xgboost") and not multi_model:
        if k.name == "xgboost" and not user_program(k, environ):
            return XGBoostAlgorithmProfile(k, environ)
        return ContainersProfile(k, environ)
    if k.name == "tensorflow":
        return TensorFlowServingProfile(k, environ, multi_model=multi_model)
    if k.name == "huggingface":
        return HuggingFaceProfile(k, environ, multi_model=multi_model)
    return ToolkitProfile(k, environ, multi_model=multi_model)


__all__ = ["profile_for"]
