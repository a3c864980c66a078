"""The converged reference results, one module per notebook on a shared runner (see ../converged_reference.py)."""
