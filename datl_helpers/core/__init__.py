"""The bottom layer: errors, results, the domain type, the training loop, metrics, models, budgets, provenance.

Nothing here imports from another layer."""
