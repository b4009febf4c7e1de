"""Money math for sandbox transactions (billing line items).

All amounts are `decimal.Decimal` and are served as strings with two places, the way
drchrono serves them. Floats never touch money here: a client that parses these
strings as floats is the bug the sandbox should expose, not hide.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

#: Every money field of a line item, in the order the API serves them.
MONEY_FIELDS: tuple[str, ...] = (
    "price",
    "billed",
    "allowed",
    "adjustment",
    "ins1_paid",
    "ins2_paid",
    "ins3_paid",
    "ins_total",
    "pt_paid",
    "paid_total",
    "balance_ins",
    "balance_pt",
    "balance_total",
)

#: Statuses whose line has been adjudicated and (at least partly) paid by insurance.
PAID_STATUSES = ("Paid in Full", "Partially Paid", "ERA Received", "Coordination of Benefits")
#: Statuses of a denied line: `denied_flag` is true and nothing is paid.
DENIED_STATUSES = ("ERA Denied", "Rejected Payer")
#: Statuses of a line still on its way, or stuck before the payer: nothing paid yet.
PENDING_STATUSES = (
    "",
    "Incomplete Information",
    "In Process Emdeon",
    "In Process iHCFA",
    "Rejected Emdeon",
    "Rejected iHCFA",
    "In Process Payer",
    "Payer Acknowledged",
)
#: All documented `billing_status` values.
BILLING_STATUSES = PENDING_STATUSES + PAID_STATUSES + DENIED_STATUSES


@dataclass(frozen=True)
class Procedure:
    """A billable code with its list price."""

    code: str
    procedure_type: str
    description: str
    price: Decimal


#: Evaluation and management visits: the first line of every billed visit.
VISIT_PROCEDURES: tuple[Procedure, ...] = (
    Procedure("99211", "CPT", "Office visit, established patient, minimal", Decimal("45.00")),
    Procedure(
        "99212", "CPT", "Office visit, established patient, straightforward", Decimal("80.00")
    ),
    Procedure(
        "99213", "CPT", "Office visit, established patient, low complexity", Decimal("125.00")
    ),
    Procedure("99214", "CPT", "Office visit, established patient, moderate", Decimal("185.00")),
    Procedure(
        "99215", "CPT", "Office visit, established patient, high complexity", Decimal("250.00")
    ),
    Procedure("99203", "CPT", "Office visit, new patient, low complexity", Decimal("170.00")),
    Procedure("99395", "CPT", "Preventive visit, established patient, 18-39", Decimal("210.00")),
)
#: Extra lines: labs, injections, supplies, fees.
EXTRA_PROCEDURES: tuple[Procedure, ...] = (
    Procedure("36415", "CPT", "Routine venipuncture", Decimal("15.00")),
    Procedure("81002", "CPT", "Urinalysis, non-automated, without microscopy", Decimal("12.00")),
    Procedure("93000", "CPT", "Electrocardiogram, complete", Decimal("65.00")),
    Procedure("90471", "CPT", "Immunization administration", Decimal("30.00")),
    Procedure("87880", "CPT", "Strep test, rapid", Decimal("28.50")),
    Procedure("J1100", "HCPCS", "Dexamethasone sodium phosphate, 1 mg", Decimal("8.75")),
    Procedure("J3420", "HCPCS", "Vitamin B-12 cyanocobalamin, up to 1000 mcg", Decimal("22.40")),
    Procedure("G0008", "HCPCS", "Administration of influenza virus vaccine", Decimal("35.00")),
    Procedure("SUPPLY", "Custom", "Medical supplies", Decimal("19.99")),
    Procedure("FORMS", "Custom", "Forms completion fee", Decimal("25.00")),
)

DENIAL_NOTES = (
    "CO-50: Non-covered service, not deemed a medical necessity",
    "CO-97: Payment included in the allowance for another service",
    "CO-16: Claim lacks information needed for adjudication",
    "PR-204: Service not covered under the patient's current benefit plan",
)


def q(value: Decimal) -> Decimal:
    """Round to cents, half up, as a billing system does."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money(value: Decimal) -> str:
    """Format an amount as the API does: `"125.00"` (and never `"-0.00"`)."""
    value = q(value)
    if value == 0:
        value = ZERO
    return f"{value:.2f}"


def quantity_decimal(quantity: float) -> Decimal:
    """Exact decimal of a served quantity (1.0, 2.0, 0.5) without float artefacts."""
    return Decimal(repr(quantity))


def posted_amounts(price: Decimal, quantity: float, *, self_pay: bool) -> dict[str, Decimal]:
    """The money fields of a line as posted, before adjudication: billed in full, nothing
    paid, owed by the insurance (or, when there is none, by the patient)."""
    billed = q(price * quantity_decimal(quantity))
    return _unadjusted(
        price,
        billed,
        pt_paid=ZERO,
        balance_ins=ZERO if self_pay else billed,
        balance_pt=billed if self_pay else ZERO,
    )


def line_amounts(
    rng: random.Random,
    *,
    price: Decimal,
    quantity: float,
    status: str,
    allowed_rate: Decimal,
    patient_share: Decimal,
    self_pay: bool,
) -> dict[str, Decimal]:
    """Compute a consistent set of money fields for one line item.

    `patient_share` is the patient's responsibility out of the allowed amount (copay or
    coinsurance, already in currency); `allowed_rate` the payer's contract rate.
    """
    posted = posted_amounts(price, quantity, self_pay=self_pay)
    billed = posted["billed"]
    if self_pay:
        # Nobody to bill but the patient: no contractual adjustment.
        if status != "Paid in Full":
            return posted
        return _unadjusted(price, billed, pt_paid=billed, balance_ins=ZERO, balance_pt=ZERO)
    if status not in PAID_STATUSES:
        # Denied and pending lines: nothing adjudicated, the whole amount sits with insurance.
        return posted
    ins = [ZERO, ZERO, ZERO]
    pt_paid = ZERO
    allowed = q(billed * allowed_rate)
    pt_resp = min(allowed, patient_share)
    ins_part = allowed - pt_resp
    if status == "Coordination of Benefits":
        ins[0] = q(ins_part * Decimal("0.8"))
        ins[1] = ins_part - ins[0]
        if rng.random() < 0.2:
            # A tertiary payer picks up half of what the secondary would.
            ins[2] = q(ins[1] / 2)
            ins[1] -= ins[2]
        pt_paid = pt_resp
    elif status == "Partially Paid":
        ins[0] = q(ins_part * Decimal(rng.randint(40, 90)) / 100)
    else:
        ins[0] = ins_part
        if status == "Paid in Full" or rng.random() < 0.5:
            pt_paid = pt_resp
    return _amounts(
        price=price,
        billed=billed,
        allowed=allowed,
        ins=tuple(ins),
        pt_paid=pt_paid,
        balance_ins=ins_part - sum(ins, ZERO),
        balance_pt=pt_resp - pt_paid,
    )


def _unadjusted(
    price: Decimal, billed: Decimal, *, pt_paid: Decimal, balance_ins: Decimal, balance_pt: Decimal
) -> dict[str, Decimal]:
    """Every money field of a line no payer has adjusted or paid: allowed as billed."""
    return _amounts(
        price=price,
        billed=billed,
        allowed=billed,
        ins=(ZERO, ZERO, ZERO),
        pt_paid=pt_paid,
        balance_ins=balance_ins,
        balance_pt=balance_pt,
    )


def _amounts(
    *,
    price: Decimal,
    billed: Decimal,
    allowed: Decimal,
    ins: tuple[Decimal, ...],
    pt_paid: Decimal,
    balance_ins: Decimal,
    balance_pt: Decimal,
) -> dict[str, Decimal]:
    """Every money field of a line, the totals derived from the parts."""
    ins_total = sum(ins, ZERO)
    return {
        "price": price,
        "billed": billed,
        "allowed": allowed,
        "adjustment": billed - allowed,
        "ins1_paid": ins[0],
        "ins2_paid": ins[1],
        "ins3_paid": ins[2],
        "ins_total": ins_total,
        "pt_paid": pt_paid,
        "paid_total": ins_total + pt_paid,
        "balance_ins": balance_ins,
        "balance_pt": balance_pt,
        "balance_total": balance_ins + balance_pt,
    }


def corrupt(rng: random.Random, amounts: dict[str, Decimal]) -> None:
    """Make a line deliberately inconsistent, as real ledgers sometimes are."""
    delta = Decimal(rng.randint(1, 999)) / 100
    if rng.random() < 0.5:
        amounts["paid_total"] += delta  # paid_total != ins_total + pt_paid
    else:
        amounts["balance_total"] += delta  # balance_total != balance_ins + balance_pt


def format_amounts(amounts: dict[str, Decimal]) -> dict[str, str]:
    """Serve every money field as a two-place decimal string."""
    return {name: money(amounts[name]) for name in MONEY_FIELDS}


def parse_amounts(record: dict[str, Any]) -> dict[str, Decimal]:
    """Read the money fields of a served line item back into decimals."""
    return {name: Decimal(record[name]) for name in MONEY_FIELDS}


def is_consistent(record: dict[str, Any]) -> bool:
    """Whether a served line item satisfies every documented money identity."""
    a = parse_amounts(record)
    billed_expected = q(a["price"] * quantity_decimal(record["quantity"]))
    return (
        a["billed"] == billed_expected
        and a["adjustment"] == a["billed"] - a["allowed"]
        and a["ins_total"] == a["ins1_paid"] + a["ins2_paid"] + a["ins3_paid"]
        and a["paid_total"] == a["ins_total"] + a["pt_paid"]
        and a["balance_total"] == a["billed"] - a["adjustment"] - a["paid_total"]
        and a["balance_total"] == a["balance_ins"] + a["balance_pt"]
    )


def apply_payment(
    record: dict[str, Any],
    *,
    ins1_paid: Decimal = ZERO,
    ins2_paid: Decimal = ZERO,
    ins3_paid: Decimal = ZERO,
    pt_paid: Decimal = ZERO,
) -> None:
    """Post payments onto a served line item in place, keeping every identity true.

    Amounts are added to what was already paid (negative amounts reverse a payment).
    Insurance payments reduce the insurance balance first and patient payments the
    patient balance; whatever remains is split so the balances add up to the total.
    """
    a = parse_amounts(record)
    for name, amount in (
        ("ins1_paid", ins1_paid),
        ("ins2_paid", ins2_paid),
        ("ins3_paid", ins3_paid),
        ("pt_paid", pt_paid),
    ):
        a[name] = q(a[name] + Decimal(amount))
    ins_now = Decimal(ins1_paid) + Decimal(ins2_paid) + Decimal(ins3_paid)
    a["adjustment"] = a["billed"] - a["allowed"]
    a["ins_total"] = a["ins1_paid"] + a["ins2_paid"] + a["ins3_paid"]
    a["paid_total"] = a["ins_total"] + a["pt_paid"]
    a["balance_total"] = a["billed"] - a["adjustment"] - a["paid_total"]
    balance_ins = max(q(a["balance_ins"] - ins_now), ZERO)
    # Whatever the insurance does not owe any more is the patient's (negative = credit).
    a["balance_ins"] = min(balance_ins, max(a["balance_total"], ZERO))
    a["balance_pt"] = a["balance_total"] - a["balance_ins"]
    record.update(format_amounts(a))
    if ins_now > 0:
        record["denied_flag"] = False
    if a["balance_total"] <= 0:
        record["billing_status"] = "Paid in Full"
    elif a["paid_total"] > 0:
        record["billing_status"] = "Partially Paid"
