#!/usr/bin/env bash
# Create or update a virtualenv of catkit from the lock (uv.lock, or requirements/*.txt for pip).
#
#   tools/venv.sh [--inexact] [--sdk3-preinstalled] [--frameworks] VENV [EXTRA...]
#
# With uv (on PATH, or installed from PyPI into .tools/uv on first use): `uv sync --locked` of the
# project with the given extras (exactly those, unless --inexact keeps what else is installed).
# Without uv (CATKIT_INSTALLER=pip, or uv cannot be had): python -m venv + pip install -e .[EXTRAS]
# constrained by requirements/constraints.txt (constraints-sdk3.txt when sdk3 is asked for).
# --sdk3-preinstalled: a Studio-like kernel - SageMaker SDK v3 is installed first (the locked
# version), then catkit with the extras; prints the SDK's version before and after.
# --frameworks: the TensorFlow Serving / Hugging Face / PyTorch test environment: catkit with the
# extras plus tensorflow-cpu (no CUDA kernels) and transformers, and torch only as a CPU build from a
# local wheel directory (CATKIT_TORCH_WHEELS, default /opt/wheels, where this project's machines keep
# torch-2.13.0+cpu): PyPI's Linux torch is a CUDA build of several GB. With no such wheel, torch is
# left out and the PyTorch tests skip, saying why.
#
# Environment: PYTHON (python3), CATKIT_INSTALLER (auto | uv | pip), UV (a uv binary to use).
# Regenerate the lock after changing dependencies: `make lock`.
set -euo pipefail
cd "$(dirname "$0")/.."

inexact=0
preinstalled=0
frameworks=0
while [[ $# -gt 0 && $1 == --* ]]; do
    case $1 in
        --inexact) inexact=1 ;;
        --sdk3-preinstalled) preinstalled=1 ;;
        --frameworks) frameworks=1 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
venv=${1:?usage: tools/venv.sh [--inexact] [--sdk3-preinstalled] [--frameworks] VENV [EXTRA...]}
shift
extras=("$@")
all_extras() { echo ${extras[@]+"${extras[@]}"}; }
python=${PYTHON:-python3}
installer=${CATKIT_INSTALLER:-auto}
# uv must use this machine's Python, never download one.
export UV_PYTHON_DOWNLOADS=never

find_uv() {
    if [[ -n ${UV:-} ]]; then echo "$UV"; return 0; fi
    if command -v uv >/dev/null 2>&1; then command -v uv; return 0; fi
    if [[ -x .tools/uv/bin/uv ]]; then echo "$PWD/.tools/uv/bin/uv"; return 0; fi
    # A small venv of its own holding uv (one ~20 MB wheel with the binary, no dependencies).
    if "$python" -m venv .tools/uv >&2 \
        && .tools/uv/bin/python -m pip install --quiet --disable-pip-version-check 'uv>=0.9,<1' >&2 \
        && [[ -x .tools/uv/bin/uv ]]; then
        echo "$PWD/.tools/uv/bin/uv"
        return 0
    fi
    return 1
}

constraints=requirements/constraints.txt
for e in $(all_extras); do if [[ $e == sdk3 ]]; then constraints=requirements/constraints-sdk3.txt; fi; done
if ((preinstalled)); then constraints=requirements/constraints-sdk3.txt; fi
spec="."
if [[ -n $(all_extras) ]]; then spec=".[$(all_extras | tr " " ",")]"; fi

uv=""
if [[ $installer != pip ]]; then
    if uv=$(find_uv); then :; elif [[ $installer == uv ]]; then
        echo "uv is neither on PATH nor installable from PyPI" >&2; exit 1
    else
        echo "uv is not available: installing with pip" >&2
        uv=""
    fi
fi

# --frameworks: what to add to the install (requirements) and where pip/uv may find torch (links).
fw_requirements=()
fw_links=()
if ((frameworks)); then
    # the ranges of pyproject.toml's tensorflow and huggingface extras (tensorflow-cpu for tensorflow;
    # the extras themselves are not installed here because huggingface would pull PyPI's torch)
    fw_requirements=('tensorflow-cpu>=2.13,<3' 'transformers>=4.30,<6')
    wheels=${CATKIT_TORCH_WHEELS:-/opt/wheels}
    torch_wheel=$(ls "$wheels"/torch-*+cpu-cp3*-linux_*.whl "$wheels"/torch-*+cpu-cp3*-manylinux*.whl 2>/dev/null | head -1 || true)
    if [[ -n $torch_wheel ]]; then
        torch_version=$(basename "$torch_wheel" | cut -d- -f2)
        fw_requirements+=("torch==$torch_version")
        fw_links=(--find-links "$wheels")
        echo "torch: the CPU build $torch_version from $wheels" >&2
    else
        echo "torch: no CPU wheel in $wheels (CATKIT_TORCH_WHEELS): not installed, the PyTorch tests will skip" >&2
    fi
fi

sdk_version() { "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("sagemaker"))' 2>/dev/null || echo none; }

if [[ -n $uv ]]; then
    echo "installing $spec into $venv with $("$uv" --version)" >&2
    if ((preinstalled)); then
        [[ -x $venv/bin/python ]] || "$uv" venv --quiet --python "$python" "$venv"
        "$uv" pip install --quiet --python "$venv/bin/python" -c "$constraints" 'sagemaker>=3,<4'
        echo "SageMaker SDK before catkit: $(sdk_version)" >&2
        "$uv" pip install --quiet --python "$venv/bin/python" -c "$constraints" -e "$spec"
        echo "SageMaker SDK after catkit: $(sdk_version)" >&2
    elif ((frameworks)); then
        [[ -x $venv/bin/python ]] || "$uv" venv --quiet --python "$python" "$venv"
        "$uv" pip install --quiet --python "$venv/bin/python" ${fw_links[@]+"${fw_links[@]}"} -c "$constraints" \
            -e "$spec" "${fw_requirements[@]}"
    else
        args=(sync --locked --quiet --python "$python")
        if ((inexact)); then args+=(--inexact); fi
        for e in $(all_extras); do args+=(--extra "$e"); done
        UV_PROJECT_ENVIRONMENT="$venv" "$uv" "${args[@]}"
    fi
else
    echo "installing $spec into $venv with pip (constraints: $constraints)" >&2
    [[ -x $venv/bin/python ]] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    if ((preinstalled)); then
        "$venv/bin/python" -m pip install --quiet -c "$constraints" 'sagemaker>=3,<4'
        echo "SageMaker SDK before catkit: $(sdk_version)" >&2
    fi
    "$venv/bin/python" -m pip install --quiet ${fw_links[@]+"${fw_links[@]}"} -c "$constraints" -e "$spec" \
        ${fw_requirements[@]+"${fw_requirements[@]}"}
    if ((preinstalled)); then echo "SageMaker SDK after catkit: $(sdk_version)" >&2; fi
fi
exit 0
