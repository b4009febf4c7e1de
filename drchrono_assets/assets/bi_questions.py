"""Ready-made BI questions over ``drchrono.duckdb``: the one place their SQL is written.

The ``bi_duckdb`` asset shows them in the UI, the test suite runs them against a fresh file
(test_bi_duckdb.py), and the README's copies, each marked ``<!-- question: <name> -->``,
must equal them exactly (the same test compares them), so no copy can drift.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BiQuestion:
    """A question a dashboard asks, and the SQL that answers it over the DuckDB views."""

    name: str  # the README's marker: <!-- question: <name> -->
    title: str
    sql: str


BI_QUESTIONS: tuple[BiQuestion, ...] = (
    BiQuestion(
        name="collections",
        title="Collections per doctor per month",
        sql="""\
SELECT doctor_id, doctor_name, CAST(date_trunc('month', date) AS DATE) AS month,
       sum(paid_total) AS collected
FROM billing_report
GROUP BY ALL
ORDER BY month, doctor_id;
""",
    ),
    BiQuestion(
        name="unbilled",
        title=(
            "Unbilled visits in the last week (of data; use `current_date` on a live dashboard)"
        ),
        sql="""\
SELECT date, appointment_id, doctor_name, status
FROM billing_report
WHERE is_unbilled AND date > (SELECT max(date) FROM billing_report) - INTERVAL 7 DAY
ORDER BY date, appointment_id;
""",
    ),
    BiQuestion(
        name="denials",
        title="Denial rate by procedure code",
        sql="""\
SELECT code, count(*) AS line_items, count(*) FILTER (WHERE denied_flag) AS denied,
       round(100.0 * count(*) FILTER (WHERE denied_flag) / count(*), 1) AS denial_rate_pct
FROM transactions
GROUP BY code
ORDER BY denial_rate_pct DESC, code;
""",
    ),
)

BI_QUESTIONS_BY_NAME: dict[str, BiQuestion] = {question.name: question for question in BI_QUESTIONS}


def bi_questions_markdown() -> str:
    """The questions as Markdown for the UI: each title and its SQL."""
    parts = [
        "Questions to ask `drchrono.duckdb` (its path: the entry `database`) in DuckDB, a "
        "notebook or a BI tool:"
    ]
    for question in BI_QUESTIONS:
        parts.append(f"**{question.title}**\n\n```sql\n{question.sql}```")
    return "\n\n".join(parts)
