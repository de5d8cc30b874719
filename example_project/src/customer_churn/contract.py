"""The feature contract: what the model reads and predicts. Changing a feature is one edit here.

Data validation, the API request model, the preprocessing columns and the example data
generator all follow from this declaration. Evaluation reports the metrics of every value of
a categorical feature marked `segment=True` (and of every band of a numeric feature given
`segment_bins`), and the promotion gate limits the gap between them; `protected=True` marks
an attribute a model must not treat unfairly, such as age.
"""

from .fields import Categorical, Contract, Numeric, Target

CONTRACT = Contract(
    identifier="customer_id",
    features=(
        Numeric("tenure_months", "Months since the customer signed up", 0, 72, integer=True),
        Numeric("monthly_charges", "Current monthly bill in dollars", 0, 200),
        Numeric("support_calls", "Calls to support in the last 90 days", 0, 30, integer=True),
        Numeric(
            "age",
            "Age of the account holder in years",
            18,
            100,
            integer=True,
            segment_bins=(30, 45, 65),
            protected=True,
        ),
        Categorical(
            "contract_type",
            "Commitment of the current plan",
            ("month-to-month", "one-year", "two-year"),
            segment=True,
        ),
        Categorical("internet_service", "Kind of internet service", ("dsl", "fiber", "none")),
        Categorical(
            "payment_method",
            "How the customer pays",
            ("electronic-check", "mailed-check", "bank-transfer", "credit-card"),
        ),
    ),
    target=Target(
        "churned", "1 if the customer cancelled within 90 days", "classification", (0, 1)
    ),
)
