"""The patients: names, demographics, contacts and insurance, registered before the
start and edited now and then."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

from drchrono_sandbox.generate.base import (
    FIRST_NAMES,
    LAST_NAMES,
    GenerationContext,
    PracticeData,
    Record,
    ref,
)

FIRST_PATIENT_ID = 10001
INSURERS = (
    # company, payer id, plan name, plan type, claim office number
    ("Acme Health Plans (sandbox)", "99001", "Acme Choice PPO", "PPO", "800-555-0101"),
    ("Placeholder Mutual (sandbox)", "99002", "Placeholder Basic HMO", "HMO", "800-555-0102"),
    ("Medicare (sandbox)", "99003", "Medicare Part B", "Medicare Part B", "800-555-0103"),
    ("Medicaid (sandbox)", "99004", "State Medicaid", "Medicaid", "800-555-0104"),
    ("Example Blue (sandbox)", "99005", "Example Blue EPO", "EPO", "800-555-0105"),
)
STREETS = ("Example Ave", "Sample St", "Placeholder Rd", "Fixture Ln", "Mock Blvd", "Stub Way")
CITIES = ("Anytown", "Sampleville", "Exampleton")
LANGUAGES = ("English", "English", "English", "Spanish", "German", "Vietnamese", "")
RACES = ("", "white", "black", "asian", "other", "declined")
ETHNICITIES = ("", "not_hispanic", "hispanic", "declined")


def street_address(rng: random.Random) -> str:
    """A made-up street address: `42 Sample St`."""
    return f"{rng.randint(1, 999)} {rng.choice(STREETS)}"


def zip_code(rng: random.Random) -> str:
    """A made-up California zip code."""
    return f"9{rng.randint(0, 999):04d}"


def phone_number(rng: random.Random) -> str:
    """A number in the 555-01xx range, reserved for fiction."""
    return f"(555) 555-{rng.randint(100, 199):04d}"


def patients(ctx: GenerationContext, data: PracticeData) -> list[Record]:
    rng = ctx.rng("patients")
    patients: list[Record] = []
    patient_id = FIRST_PATIENT_ID
    first_update = datetime.combine(ctx.start - timedelta(days=400), time(8, 0))
    last_update = ctx.clamp(datetime.combine(ctx.end, time(18, 0)))
    span = max(int((last_update - first_update).total_seconds()), 1)
    doctors = ctx.doctor_rows
    for n in range(ctx.size.patients):
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        gender = rng.choices(("Female", "Male", "Other"), weights=(50, 47, 3))[0]
        dob = date(1940, 1, 1) + timedelta(days=rng.randint(0, 80 * 365))
        doctor_id = (
            doctors[n % len(doctors)][0] if n % 10 else doctors[rng.randrange(len(doctors))][0]
        )
        insured = rng.random() < 0.9
        insurer = rng.randrange(len(INSURERS))
        company, payer_id, plan_name, plan_type, claim_office = INSURERS[insurer]
        employed = rng.random() < 0.6
        record: Record = {
            "id": patient_id,
            "chart_id": f"{last[:2].upper()}{first[:2].upper()}{n + 1:06d}",
            "first_name": first,
            "middle_name": rng.choice(("", "", "J", "M", "Lee")),
            "last_name": last,
            "date_of_birth": dob.isoformat(),
            "gender": gender,
            "doctor": ref("doctors", doctor_id),
            "email": f"{first.lower()}.{last.lower()}{n + 1}@example.com"
            if rng.random() < 0.8
            else "",
            "address": street_address(rng),
            "city": rng.choice(CITIES),
            "state": "CA",
            "zip_code": zip_code(rng),
            "cell_phone": phone_number(rng),
            "home_phone": phone_number(rng) if rng.random() < 0.3 else "",
            "social_security_number": f"000-{rng.randint(10, 99)}-{rng.randint(0, 9999):04d}",
            "race": rng.choice(RACES),
            "ethnicity": rng.choice(ETHNICITIES),
            "preferred_language": rng.choice(LANGUAGES),
            "primary_care_physician": "",
            "emergency_contact_name": f"{rng.choice(FIRST_NAMES)} {last}",
            "emergency_contact_phone": phone_number(rng),
            "emergency_contact_relation": rng.choice(("Spouse", "Parent", "Sibling", "Friend")),
            "employer": "Example Corp (sandbox)" if employed else "",
            "employer_address": "1 Corporate Way" if employed else "",
            "employer_city": "Anytown" if employed else "",
            "employer_state": "CA" if employed else "",
            "employer_zip_code": "90002" if employed else "",
            "primary_insurance_company": company if insured else "",
            "primary_insurance_id_number": f"SBX{rng.randint(0, 10**9 - 1):09d}" if insured else "",
            "primary_insurance_group_number": f"G{rng.randint(1000, 9999)}" if insured else "",
            "primary_insurance_claim_office_number": claim_office if insured else "",
            "primary_insurance_payer_id": payer_id if insured else "",
            "primary_insurance_plan_name": plan_name if insured else "",
            "primary_insurance_plan_type": plan_type if insured else "",
        }
        patients.append(record)
        data.updated_at["patients"][patient_id] = first_update + timedelta(
            seconds=rng.randrange(span)
        )
        patient_id += rng.randint(1, 4)
    return patients
