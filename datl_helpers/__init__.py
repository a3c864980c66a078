"""datl: transfer learning from feature extraction to domain-adversarial training.

The library is a stack of layers, each a subpackage that imports only from the layers below it:

====================  ===========================================================================
``core``              errors, results, the domain type, the training loop, metrics, models, provenance
``data``              the domain registry: image builders, text and tabular corpora, pictures of the shift
``transfer``          notebooks 01-03: feature extraction, fine-tuning, augmentation
``adaptation``        notebook 04: the domain-adversarial loss, DANN, the simpler methods, selection, reweighting
``robustness``        notebook 06: adversarial examples
``beyond``            notebooks 07-08: the same layer on text and on patients' records
``course``            what the notebooks show a learner: claims, the summary, checks, quizzes, widgets
``cli``               ``python -m datl_helpers COMMAND``
====================  ===========================================================================

Importing the package does no work. Each module is also reachable by its short name
(``from datl_helpers import data, dann, train``), imported when first used.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__version__ = "0.1.0"

# Short name -> module, for `from datl_helpers import dann` (one entry per module; tested).
FACE = {
    **{m: f"core.{m}" for m in ("errors", "cache", "results", "metrics", "domain", "train", "models",
                                 "provenance", "budget")},
    "data": "data",
    **{m: f"data.{m}" for m in ("registry", "images", "own", "fetch", "synth", "rserial", "text_domains", "tabular_domains",
                                 "shift")},
    "transfer": "transfer",
    **{m: f"transfer.{m}" for m in ("recipe", "features", "finetune", "augment", "recolour", "experiments")},
    "adaptation": "adaptation",
    **{m: f"adaptation.{m}" for m in ("reversal", "adversarial", "methods", "dann", "batchnorm", "selection", "moons",
                                       "reweighting")},
    "robust": "robustness.robust",
    "text": "beyond.text",
    "tabular": "beyond.tabular",
    **{m: f"course.{m}" for m in ("claims", "summary", "facts", "check", "exercises", "widgets", "plots", "runner",
                                  "live", "study", "site", "quiz", "interview", "predict")},
    **{m: f"cli.{m}" for m in ("reproduce", "bench")},
}

__all__ = ["__version__", *FACE]


def __getattr__(name: str) -> ModuleType:
    if name in FACE:
        return importlib.import_module(f"{__name__}.{FACE[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(FACE))
