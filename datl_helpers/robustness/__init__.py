"""Notebook 06: adversarial examples -- attacks on inputs, robust accuracy, adversarial training."""
