"""A deterministic generator of realistic customer-churn data, any size, for demos and benchmarks.

Churn rises with month-to-month contracts, support calls, high bills, fibre service and
electronic-check payment, and falls with tenure; noise and a few missing values make it
a fair exercise rather than a solved one. The same seed always yields the same rows.
"""

import numpy as np
import pandas as pd

from .contract import CONTRACT

MISSING_SHARE = {"monthly_charges": 0.02, "support_calls": 0.01, "payment_method": 0.015}


def generate(n_rows: int, seed: int = 42) -> pd.DataFrame:
    """Return `n_rows` synthetic customers, including the target column."""
    if n_rows < 1:
        raise ValueError(f"n_rows must be at least 1, got {n_rows}")
    rng = np.random.default_rng(seed)
    contract = rng.choice(["month-to-month", "one-year", "two-year"], n_rows, p=[0.55, 0.25, 0.2])
    internet = rng.choice(["dsl", "fiber", "none"], n_rows, p=[0.35, 0.45, 0.2])
    payment = rng.choice(
        ["electronic-check", "mailed-check", "bank-transfer", "credit-card"],
        n_rows,
        p=[0.35, 0.2, 0.225, 0.225],
    )
    long_contract = contract != "month-to-month"
    tenure = np.clip(rng.gamma(1.3 + 1.5 * long_contract, 14), 0, 72).astype(int)
    base_bill = np.select([internet == "fiber", internet == "dsl"], [80.0, 55.0], 25.0)
    monthly = np.clip(base_bill + rng.normal(0, 12, n_rows), 18, 150).round(2)
    support = np.minimum(rng.poisson(0.8 + 1.2 * (internet == "fiber")), 30)
    age = np.clip(rng.normal(46, 15, n_rows), 18, 95).astype(int)

    logit = (
        -1.6
        + 1.4 * (contract == "month-to-month")
        - 0.05 * tenure
        + 0.45 * support
        + 0.02 * (monthly - 60)
        + 0.6 * (payment == "electronic-check")
        + 0.35 * (internet == "fiber")
        + 0.01 * (age - 46)
        + rng.normal(0, 0.6, n_rows)
    )
    churned = (rng.random(n_rows) < 1 / (1 + np.exp(-logit))).astype(int)

    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:07d}" for i in range(1, n_rows + 1)],
            "tenure_months": pd.array(tenure, dtype="Int64"),
            "monthly_charges": monthly,
            "support_calls": pd.array(support, dtype="Int64"),
            "age": pd.array(age, dtype="Int64"),
            "contract_type": contract,
            "internet_service": internet,
            "payment_method": payment.astype(object),
            CONTRACT.target.name: churned,
        }
    )
    for column, share in MISSING_SHARE.items():
        frame.loc[rng.random(n_rows) < share, column] = None
    return frame
