"""Which AWS container an image URI names, and what the local backend needs to emulate it.

A ``ContainerDefinition.Image`` is matched on its ECR repository name against the SageMaker
Python SDK's image table (``sagemaker/image_uri_config/{sklearn,xgboost,pytorch,tensorflow,
huggingface}.json``: the repositories AWS publishes) and mapped to one :class:`ContainerKind`.
Every other image is ``custom``: served with the sagemaker-inference-toolkit contract (what the
toolkit's ``DefaultHandlerService`` does for a custom container built on it). Each kind names the
Python modules its emulation imports (the frameworks stay optional extras: ``catkit[xgboost]``,
``catkit[pytorch]``, ``catkit[tensorflow]``, ``catkit[huggingface]``); :func:`missing_framework`
says which is absent without importing anything, so CreateEndpoint can fail at once with a
FailureReason that says so instead of falling back to another container's behaviour.

Pure: no I/O beyond ``importlib.util.find_spec``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass

#: SAGEMAKER_SUBMIT_DIRECTORY value the SDK sets when it repacks the script into the model archive.
MODEL_CODE_DIR = "/opt/ml/model/code"
PROGRAM_ENV = "SAGEMAKER_PROGRAM"
SUBMIT_DIR_ENV = "SAGEMAKER_SUBMIT_DIRECTORY"


@dataclass(frozen=True)
class ContainerKind:
    """One emulated container family."""

    name: str  # catkit's key: sklearn, xgboost, pytorch, tensorflow, huggingface, custom
    label: str  # what users call it
    repositories: tuple[str, ...]  # ECR repository names (SDK image_uri_config)
    modules: tuple[str, ...]  # Python modules the emulation imports
    extra: str | None  # pip extra that installs them
    source: str  # the AWS source file(s) the emulation follows


KINDS: dict[str, ContainerKind] = {
    k.name: k
    for k in (
        ContainerKind(
            "sklearn", "scikit-learn", ("sagemaker-scikit-learn",), ("sklearn",), None,
            "aws/sagemaker-scikit-learn-container src/sagemaker_sklearn_container/serving.py, handler_service.py; "
            "aws/sagemaker-containers src/sagemaker_containers/_transformer.py, _worker.py, _encoders.py",
        ),
        ContainerKind(
            "xgboost", "XGBoost (framework and built-in algorithm)", ("sagemaker-xgboost", "xgboost"),
            ("xgboost",), "xgboost",
            "aws/sagemaker-xgboost-container src/sagemaker_xgboost_container/serving.py, encoder.py, "
            "algorithm_mode/serve.py, algorithm_mode/serve_utils.py",
        ),
        ContainerKind(
            "pytorch", "PyTorch", ("pytorch-inference", "sagemaker-pytorch", "pytorch-inference-graviton"),
            ("torch",), "pytorch",
            "aws/sagemaker-pytorch-inference-toolkit src/sagemaker_pytorch_serving_container/"
            "default_pytorch_inference_handler.py; aws/sagemaker-inference-toolkit transformer.py",
        ),
        ContainerKind(
            "tensorflow", "TensorFlow Serving",
            ("tensorflow-inference", "sagemaker-tensorflow-serving", "tensorflow-inference-graviton"),
            ("tensorflow",), "tensorflow",
            "aws/sagemaker-tensorflow-serving-container docker/build_artifacts/sagemaker/python_service.py, "
            "tensorflowServing.js",
        ),
        ContainerKind(
            "huggingface", "Hugging Face",
            ("huggingface-pytorch-inference", "huggingface-tensorflow-inference"),
            ("transformers",), "huggingface",
            "aws/sagemaker-huggingface-inference-toolkit src/sagemaker_huggingface_inference_toolkit/"
            "handler_service.py, decoder_encoder.py",
        ),
        ContainerKind(
            "custom", "any other image (custom container)", (), (), None,
            "aws/sagemaker-inference-toolkit src/sagemaker_inference/transformer.py, "
            "default_inference_handler.py, decoder.py, encoder.py, environment.py",
        ),
    )
}


def repository(image: str | None) -> str:
    """The repository name of an image URI: ``acct.dkr.ecr.r.amazonaws.com/sagemaker-xgboost:1.7-1``
    -> ``sagemaker-xgboost`` (no registry, tag or digest); '' for None."""
    if not image:
        return ""
    path = image.split("@", 1)[0]
    last = path.rsplit("/", 1)[-1]
    return last.split(":", 1)[0].lower()


def container_for_image(image: str | None) -> ContainerKind:
    """The :class:`ContainerKind` an image URI names (``custom`` for anything unknown)."""
    repo = repository(image)
    for kind in KINDS.values():
        if repo in kind.repositories:
            return kind
    return KINDS["custom"]


def missing_framework(kind: ContainerKind) -> str | None:
    """None if the modules ``kind`` needs import here, else a message for FailureReason."""
    missing = [m for m in kind.modules if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    how = f"pip install 'catkit[{kind.extra}]'" if kind.extra else f"pip install {' '.join(missing)}"
    return (
        f"The {kind.label} container is emulated locally with the Python package(s) "
        f"{', '.join(missing)}, which are not installed in the local backend's environment; "
        f"install them ({how}) and restart the backend (`catkit local stop`)."
    )


def user_program(kind: ContainerKind, env: Mapping[str, str], multi_model: bool = False) -> str | None:
    """The user script (module file name) the container imports, or None when it runs no script.

    - sagemaker-inference-toolkit containers (custom, PyTorch, Hugging Face, every multi-model
      framework container): ``SAGEMAKER_PROGRAM``, default ``inference.py``
      (``sagemaker_inference/environment.py`` DEFAULT_MODULE_NAME);
    - TensorFlow Serving: always ``code/inference.py`` (``python_service.py`` INFERENCE_SCRIPT_PATH);
    - scikit-learn / XGBoost single-model (sagemaker-containers ``_env.ServingEnv``):
      ``SAGEMAKER_PROGRAM`` with no default (XGBoost without it runs the built-in algorithm).
    """
    program = (env.get(PROGRAM_ENV) or "").strip() or None
    if kind.name == "tensorflow":
        return "inference.py"
    if kind.name in ("sklearn", "xgboost") and not multi_model:
        return program
    return program or "inference.py"


def script_environment(image: str | None) -> dict[str, str]:
    """The environment a single-model framework container needs to run the archive's
    ``code/inference.py`` - what the SageMaker SDK sets for ``entry_point`` when it repacks the script
    into the archive (``Model._script_mode_env_vars``). Empty for images that find it without help
    (custom, TensorFlow Serving). scikit-learn and XGBoost fail (or run the built-in algorithm)
    without it."""
    if container_for_image(image).name in ("sklearn", "xgboost", "pytorch", "huggingface"):
        return {PROGRAM_ENV: "inference.py", SUBMIT_DIR_ENV: MODEL_CODE_DIR}
    return {}


def module_file(program: str) -> str:
    """``inference`` or ``inference.py`` -> ``inference.py`` (the toolkits strip ``.py`` to get a
    module name; catkit imports the file)."""
    return program if program.endswith(".py") else f"{program}.py"


__all__ = [
    "KINDS",
    "MODEL_CODE_DIR",
    "PROGRAM_ENV",
    "SUBMIT_DIR_ENV",
    "ContainerKind",
    "container_for_image",
    "missing_framework",
    "module_file",
    "repository",
    "script_environment",
    "user_program",
]
