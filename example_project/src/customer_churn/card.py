"""The model card's prose: what the model is for and where it must not be trusted.

Yours to edit: the rest of the card (data, metrics, explanations, segments, the production
profile) is written by training (modeling/model_card.py).
"""

INTENDED_USE = (
    "Ranks or scores records like those described by the feature contract, to support a "
    "person's decision. Not for decisions about individuals without human review."
)
LIMITATIONS = (
    "Trained on the bundled synthetic data unless replaced: its figures say nothing about real "
    "customers. Performance holds only for data like the training data; watch for drift."
)
