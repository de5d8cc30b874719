"""The feature contract: what the model reads and predicts. Changing a feature is one edit here.

Data validation, the API request model, the preprocessing columns and the example data
generator all follow from this declaration.
"""

from .fields import Categorical, Contract, Numeric, Target

CONTRACT = Contract(
    identifier="customer_id",
    features=(
        Numeric("tenure_months", "Months since the customer signed up", 0, 72, integer=True),
        Numeric("monthly_charges", "Current monthly bill in dollars", 0, 200),
        Numeric("support_calls", "Calls to support in the last 90 days", 0, 30, integer=True),
        Numeric("age", "Age of the account holder in years", 18, 100, integer=True),
        Categorical(
            "contract_type",
            "Commitment of the current plan",
            ("month-to-month", "one-year", "two-year"),
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
