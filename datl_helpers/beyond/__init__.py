"""Beyond images (notebook 07): the same domain-adversarial layer on text."""
