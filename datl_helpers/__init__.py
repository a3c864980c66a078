"""datl: transfer learning from feature extraction to domain-adversarial training.

Importing the package does no work: each concept lives in its own module, imported when used
(``from datl_helpers import data, models, train``).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
