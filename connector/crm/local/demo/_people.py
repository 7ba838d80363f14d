"""People: owners (Users), accounts with their names, and contacts with their names, titles, accounts and owners."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sqlglot import exp

from connector import sql
from connector.crm.local.demo._days import offsets, timestamps
from connector.crm.local.demo._personas import PERSONAS
from connector.crm.local.demo._templates import TEMPLATES

if TYPE_CHECKING:
    import numpy.typing as npt

    from connector.crm.local.store import LocalCrm

    Ints = npt.NDArray[np.int64]
    Times = npt.NDArray[np.datetime64]

OWNERS = [
    ("Maya Lindqvist", 1.4),
    ("Daniel Okafor", 1.2),
    ("Priya Raman", 1.2),
    ("Tom Becker", 1.0),
    ("Sofia Alvarez", 1.0),
    ("James Whitfield", 0.9),
    ("Aiko Tanaka", 0.8),
    ("Lucas Moreau", 0.5),
]
OWNER_P = np.array([w for _, w in OWNERS]) / sum(w for _, w in OWNERS)
_FIRST = [
    "Anna",
    "Ben",
    "Chloe",
    "David",
    "Elena",
    "Farid",
    "Grace",
    "Hannah",
    "Ian",
    "Julia",
    "Karim",
    "Laura",
    "Marco",
    "Nina",
    "Oliver",
    "Paula",
    "Quentin",
    "Rosa",
    "Samuel",
    "Tara",
    "Umar",
    "Vera",
    "William",
    "Xin",
    "Yusuf",
    "Zoe",
    "Amelia",
    "Bruno",
    "Carmen",
    "Dmitri",
    "Emma",
    "Felix",
    "Gabriela",
    "Hugo",
    "Ingrid",
    "Jonas",
    "Kenji",
    "Leila",
    "Mateo",
    "Noor",
    "Oscar",
    "Petra",
    "Rahul",
    "Sara",
    "Theo",
    "Ursula",
    "Victor",
    "Wen",
]
_LAST = [
    "Andersen",
    "Brown",
    "Castillo",
    "Dubois",
    "Eriksson",
    "Fischer",
    "Garcia",
    "Hughes",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Lopez",
    "Murphy",
    "Nakamura",
    "O'Brien",
    "Patel",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Thompson",
    "Ueda",
    "Vargas",
    "Walker",
    "Xu",
    "Young",
    "Zimmermann",
    "Ahmed",
    "Bianchi",
    "Chen",
    "Dasgupta",
    "Evans",
    "Fernandes",
    "Gallagher",
    "Haddad",
    "Ito",
    "Johansson",
    "Kim",
    "Larsen",
    "Mensah",
    "Novak",
    "Okoye",
    "Park",
]
_TITLES = [
    "CEO",
    "CFO",
    "CTO",
    "VP Sales",
    "VP Operations",
    "Head of Procurement",
    "IT Director",
    "Operations Manager",
    "Finance Manager",
    "Product Manager",
    "Office Manager",
    "Purchasing Agent",
    "Engineering Lead",
    "Customer Success Manager",
    "Marketing Director",
    "Project Manager",
]
_LEAD_SOURCES = [
    "Web",
    "Phone Inquiry",
    "Partner Referral",
    "Purchased List",
    "Trade Show",
    "Employee Referral",
    "Other",
]
_LEAD_SOURCE_P = np.array([0.3, 0.15, 0.12, 0.1, 0.13, 0.1, 0.1])
_ACCOUNT_A = [
    "North",
    "Blue",
    "Bright",
    "Silver",
    "Green",
    "Summit",
    "Pioneer",
    "Harbor",
    "Cedar",
    "Granite",
    "Maple",
    "River",
    "Stone",
    "Iron",
    "Golden",
    "Clear",
]
_ACCOUNT_B = ["field", "ridge", "works", "point", "line", "gate", "wave", "path", "bridge", "crest", "mark", "soft"]


# An account's name is its two name parts, as in its contacts' e-mail domain, with a company suffix for each round
# of the combinations and a number once the suffixes run out: "Northfield Inc", "Northfield Group", ...
_ACCOUNT_SUFFIX = ["Inc", "Group", "Partners", "Labs", "Systems", "Holdings", "Ltd", "Co"]


def _texts(values: list[str]) -> exp.Expr:
    """An inline list of text literals, indexed 1-based in SQL."""
    return exp.Array(expressions=[sql.lit(v) for v in values])


_USERS = """
INSERT INTO "User" ("Id", "Name", "Email", "IsActive")
SELECT sf_id('005', i), $names[i + 1], $emails[i + 1], true FROM range($n) r(i)
"""
_USER_NUMBERS = """
CREATE OR REPLACE TEMP TABLE demo_user AS SELECT CAST(i AS BIGINT) AS n, sf_id('005', i) AS Id FROM range($n) r(i)
"""
_TEMPLATE_TABLE = """
CREATE OR REPLACE TEMP TABLE demo_tmpl (i BIGINT, Subject VARCHAR, Subtype VARCHAR, Type VARCHAR, CallType VARCHAR,
                                        AllDay BOOLEAN)
"""


_ACCOUNTS = """
INSERT INTO "Account" ("Id", "Name", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp")
SELECT sf_id('001', i),
       $account_a[i % $n_a + 1] || $account_b[(i // $n_a) % $n_b + 1] || ' ' || $suffix[(i // $n_ab) % $n_s + 1]
         || CASE WHEN i >= $n_ab * $n_s THEN ' ' || CAST(i // ($n_ab * $n_s) + 1 AS VARCHAR) ELSE '' END,
       false, $created, $created, $created
FROM range($n) r(i)
"""


def load_accounts(crm: LocalCrm, org: Org) -> None:
    """Every invented account, with a name (the digest names each contact's account). Drawn from no random
    stream: the contacts and activities of a seed stay what they were."""
    n_a, n_b = len(_ACCOUNT_A), len(_ACCOUNT_B)
    created = dt.datetime.combine(org.as_of - dt.timedelta(days=1500), dt.time(9))
    sql.run(
        crm.con,
        sql.q(
            _ACCOUNTS,
            account_a=_texts(_ACCOUNT_A),
            account_b=_texts(_ACCOUNT_B),
            suffix=_texts(_ACCOUNT_SUFFIX),
            n_a=n_a,
            n_b=n_b,
            n_ab=n_a * n_b,
            n_s=len(_ACCOUNT_SUFFIX),
            n=org.accounts,
            created=exp.cast(exp.Literal.string(created.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP),
        ),
    )


def load_lookups(crm: LocalCrm) -> None:
    """Owners, and the small lookup tables the bulk INSERTs join against."""
    con = crm.con
    names = [n for n, _ in OWNERS]
    emails = [".".join(n.lower().split()) + "@trust-ladder-demo.example.com" for n in names]
    sql.run(con, sql.q(_USERS, names=_texts(names), emails=_texts(emails), n=len(names)))
    sql.run(con, sql.q(_USER_NUMBERS, n=len(names)))
    sql.run(con, sql.q(_TEMPLATE_TABLE))
    rows = [(i, t.subject, t.subtype, t.type, t.call_type, t.all_day) for i, t in enumerate(TEMPLATES)]
    sql.run(
        con,
        exp.insert(
            exp.Values(expressions=[exp.Tuple(expressions=[sql.lit(v) for v in row]) for row in rows]), "demo_tmpl"
        ),
    )


@dataclass(frozen=True)
class Org:
    """What every chunk shares: sizes of the invented accounts and leads, and who owns each account."""

    as_of: dt.date
    accounts: int
    leads: int
    account_owner: Ints


@dataclass(frozen=True)
class Contacts:
    """The chunk's contacts as the activities need them (index = chunk-local contact)."""

    first: int  # global number of the chunk's first contact
    age: Ints  # days since created
    account: Ints
    owner: Ints
    created: Times


# A contact's e-mail is first.last (without apostrophes) at a domain made of its account's two name parts, with
# the account number appended once the combinations run out.
_CONTACTS = """
CREATE OR REPLACE TEMP TABLE demo_contact AS
SELECT c.n, sf_id('003', c.n) AS Id, sf_id('001', c.account) AS AccountId, u.Id AS OwnerId,
       $first_names[c.first + 1] AS FirstName, $last_names[c.last + 1] AS LastName,
       lower(replace($first_names[c.first + 1] || '.' || $last_names[c.last + 1], '''', ''))
         || '@' || lower($account_a[c.account % $n_a + 1] || $account_b[(c.account // $n_a) % $n_b + 1])
         || CASE WHEN c.account >= $n_ab THEN CAST(c.account // $n_ab AS VARCHAR) ELSE '' END
         || '.example.com' AS Email,
       $titles[c.title + 1] AS Title, $sources[c.source + 1] AS LeadSource, c.created, c.modified
FROM demo_c c JOIN demo_user u ON u.n = c.owner
"""


def load_contacts(crm: LocalCrm, rng: np.random.Generator, first: int, persona: Ints, org: Org) -> Contacts:
    n = len(persona)
    lo = np.array([p.min_age for p in PERSONAS], dtype=np.int64)[persona]
    hi = np.array([p.max_age for p in PERSONAS], dtype=np.int64)[persona]
    age = offsets(rng, 0, hi - lo) + lo
    account = rng.integers(0, org.accounts, size=n, dtype=np.int64)
    owner = np.where(rng.random(n) < 0.9, org.account_owner[account], rng.choice(len(OWNERS), size=n, p=OWNER_P))
    created = timestamps(org.as_of, age, rng.integers(8 * 3600, 17 * 3600, size=n, dtype=np.int64))
    # Last edited some time between creation and an hour before the evaluation date.
    span = timestamps(org.as_of, np.zeros(n, dtype=np.int64), np.full(n, -3600, dtype=np.int64)) - created
    modified = created + (span.astype(np.int64) * rng.random(n)).astype("timedelta64[us]").astype("timedelta64[s]")
    crm.con.register(
        "demo_c",
        {
            "n": np.arange(first, first + n, dtype=np.int64),
            "first": rng.integers(0, len(_FIRST), size=n, dtype=np.int64),
            "last": rng.integers(0, len(_LAST), size=n, dtype=np.int64),
            "title": rng.integers(0, len(_TITLES), size=n, dtype=np.int64),
            "source": rng.choice(len(_LEAD_SOURCES), size=n, p=_LEAD_SOURCE_P),
            "account": account,
            "owner": owner,
            "created": created,
            "modified": modified,
        },
    )
    n_a, n_b = len(_ACCOUNT_A), len(_ACCOUNT_B)
    sql.run(
        crm.con,
        sql.q(
            _CONTACTS,
            first_names=_texts(_FIRST),
            last_names=_texts(_LAST),
            titles=_texts(_TITLES),
            sources=_texts(_LEAD_SOURCES),
            account_a=_texts(_ACCOUNT_A),
            account_b=_texts(_ACCOUNT_B),
            n_a=n_a,
            n_b=n_b,
            n_ab=n_a * n_b,
        ),
    )
    crm.con.unregister("demo_c")
    sql.run(
        crm.con,
        sql.q("""
INSERT INTO "Contact" ("Id", "FirstName", "LastName", "Email", "Title", "AccountId", "OwnerId", "LeadSource",
                       "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted")
SELECT Id, FirstName, LastName, Email, Title, AccountId, OwnerId, LeadSource, created, modified, modified, false
FROM demo_contact ORDER BY n
"""),
    )
    return Contacts(first, age, account, owner.astype(np.int64), created)
