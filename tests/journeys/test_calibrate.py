"""An admin asks whether each rung is earned: `calibrate` reads where every contact stood on the first of each month
and what happened next. On demo orgs, whose deals and bounces were drawn from each contact's rung with known rates,
it must find those rates again: within intervals widened for the number of rates checked, since one 95% interval
in twenty misses by chance."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from statistics import NormalDist
from typing import Any

import duckdb
import pytest

from connector.commands import calibrate, calibrate_text, calibration, demo_outcomes
from connector.config import Config
from connector.crm.local import demo
from connector.crm.local.demo._outcomes import CLOSE_WITHIN_DAYS, RENEWAL_SHARE, gone_rate, won_rate
from connector.crm.local.store import LocalCrm
from connector.engine import timeline
from connector.ruleset import compiler
from tests.conftest import AS_OF, DEFAULT_RULES, Org

CONTACTS = 1500
SEEDS = (1, 2, 3, 4)  # several demo orgs: one seed passing could be luck
# Per seed, the rung rates checked against the generator's: won deals, renewals and bounces on five rungs (rungs
# with fewer than 30 contact-months are skipped, so fewer in practice). With 95% intervals, about one check in 20
# misses by chance (3 of 4 seeds had one miss among their ~14); Bonferroni's correction widens each interval so
# that all of them together miss with at most 5% probability when calibrate is right.
CHECKS_PER_SEED = 15
ALL_TOGETHER = 0.05 / (len(SEEDS) * CHECKS_PER_SEED)  # each interval's miss probability: 0.083%
Z_ALL = NormalDist().inv_cdf(1 - ALL_TOGETHER / 2)  # 3.34, against 1.96 for one 95% interval


def _calibrated_demo(folder: Path, seed: int) -> calibration.Calibration:
    """The demo org of `seed` with its deals, calibrated with a horizon of CLOSE_WITHIN_DAYS: each month's draw is
    then seen by that month's first day alone, so a rung's rate is exactly the generator's probability for it."""
    path = folder / "crm.duckdb"
    rules = compiler.load(DEFAULT_RULES)
    crm = LocalCrm.create(path)
    try:
        demo.generate(crm, contacts=CONTACTS, seed=seed, as_of=AS_OF)
        demo_outcomes.add(crm, rules, seed=seed, as_of=AS_OF)
    finally:
        crm.close()
    crm = LocalCrm.open(path)
    try:
        crm.prepare(Config().fields)
        return calibrate.calibrate(crm.con, rules, AS_OF, horizon=CLOSE_WITHIN_DAYS)
    finally:
        crm.close()


@pytest.fixture(scope="module")
def seeds_calibrated(tmp_path_factory: pytest.TempPathFactory) -> dict[int, calibration.Calibration]:
    return {seed: _calibrated_demo(tmp_path_factory.mktemp(f"calibrate-{seed}"), seed) for seed in SEEDS}


@pytest.fixture(scope="module")
def demo_calibration(seeds_calibrated: dict[int, calibration.Calibration]) -> calibration.Calibration:
    """One of the demo orgs, for the checks that do not depend on chance."""
    return seeds_calibrated[SEEDS[0]]


def table(cal: calibration.Calibration, name: str) -> calibration.OutcomeTable:
    return next(t for t in cal.outcomes if t.name == name)


def written_to_yesterday(org: Org) -> str:
    """Cleo, a newcomer (known 10 days: on no month's first day) written to yesterday: the CRM data covers up to
    14 June, so the months whose horizon ends by then are measured."""
    cleo = org.contact("Cleo", known_for_days=10)
    org.email_out(cleo, 1)
    return cleo


def _generators_rate(outcome: str, rung: int) -> float:
    """The probability the generator gave a contact on `rung` on a month's first day of this outcome within
    CLOSE_WITHIN_DAYS."""
    if outcome == "gone":
        return gone_rate(rung)
    return won_rate(rung) * (RENEWAL_SHARE if outcome == "renewal" else 1.0)


def test_calibrate_finds_the_rates_the_generator_gave_each_rung_on_every_seed(
    seeds_calibrated: dict[int, calibration.Calibration],
) -> None:
    """On four demo orgs, every rung's rate of won deals, renewals and bounces (rungs with 30 contact-months or
    more) holds the generator's probability within its interval, widened for the number of checks made."""
    misses = []
    for seed, cal in seeds_calibrated.items():
        checked = []
        for outcome in ("won_deal", "renewal", "gone"):
            for index, row in enumerate(table(cal, outcome).rows):
                if row.all.n < 30:  # the demo's top rungs are young: too few contact-months to say anything
                    continue
                low, high = calibration.wilson(row.all.hits, row.all.n, Z_ALL) or (0.0, 0.0)
                expected = _generators_rate(outcome, index)
                checked.append(row.rung)
                if not low <= expected <= high:
                    misses.append((seed, outcome, row.rung, row.all, expected, (low, high)))
        assert checked.count("Faithful") == 3 and len(checked) <= CHECKS_PER_SEED, (seed, checked)
    assert not misses


def test_the_generators_ordering_and_its_uninformative_rung_are_found_on_every_seed(
    seeds_calibrated: dict[int, calibration.Calibration],
) -> None:
    """The generator made Friend win more than Fringe and Faithful more than Familiar, and Familiar win exactly as
    often as Friend. On every seed the first two stand clearly apart, and Familiar is never called clearly above
    Friend: its interval, widened for the checks made, holds Friend's rate."""
    for seed, cal in seeds_calibrated.items():
        won = table(cal, "won_deal")
        standing = {s.rung: s.standing for s in won.steps()}
        assert standing["Friend"] == standing["Faithful"] == calibration.CLEARLY, (seed, standing)
        assert standing["Familiar"] != calibration.CLEARLY, (seed, standing)
        friend, familiar = won.rows[1].all, won.rows[2].all
        low, high = calibration.wilson(familiar.hits, familiar.n, Z_ALL) or (0.0, 0.0)
        assert friend.rate is not None and low <= friend.rate <= high, (seed, friend, familiar)
        # Bounces fall as the ladder climbs: Friend loses clearly fewer contacts than Fringe.
        assert table(cal, "gone").steps()[0].standing == calibration.CLEARLY, seed


def test_only_days_whose_horizon_has_passed_count_and_the_latest_are_reported_apart(
    demo_calibration: calibration.Calibration,
) -> None:
    t = table(demo_calibration, "won_deal")
    # The demo's newest activity is on 14 June: 1 June + 14 days is 15 June, past the last day its data covers.
    assert demo_calibration.last_day == dt.date(2026, 6, 14)
    assert t.last_day == dt.date(2026, 5, 1)
    assert t.recent_from == dt.date(2025, 12, 1)  # the last six months apart from the earlier ones
    for row in t.rows:
        assert row.all.n == row.tuning.n + row.recent.n
        assert row.all.hits == row.tuning.hits + row.recent.hits


def test_a_bad_outcome_is_ordered_when_it_falls_as_the_ladder_climbs(demo_calibration: calibration.Calibration) -> None:
    silent = table(demo_calibration, "went_silent")
    rates = [r.all.hits / r.all.n for r in silent.rows if r.all.n >= 30]
    assert rates == sorted(rates, reverse=True)
    assert silent.ordered is True


def cli(folder: Path, rules: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = folder / "trust-ladder.toml"
    config.write_text(f'[local]\ndatabase = "crm.duckdb"\n[state]\npath = "state.duckdb"\n[rules]\npath = "{rules}"\n')
    return subprocess.run(
        [sys.executable, "-m", "connector", "--log-format", "json", "--config", str(config), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_contact_role_on_a_won_deal_counts_for_the_rung_it_stood_on(org: Org) -> None:
    """Ada talked to us all spring (Friend on 1 May) and was a contact role on a deal won on 10 May; Bob, silent,
    was on Fringe and on a deal that was lost. The table says so, and JSON says the same. The data ends on 14 June:
    1 May is measured (its 30 days end on 31 May), 1 June is not, and the header counts the one month measured and
    says why June is left out."""
    ada = org.contact("Ada", known_for_days=400)
    for days_ago in (50, 70, 100, 130):
        org.reply(ada, days_ago)
    bob = org.contact("Bob", known_for_days=400)
    org.email_out(bob, 60)
    written_to_yesterday(org)
    org._exec(
        'INSERT INTO "Opportunity" ("Id", "Name", "StageName", "Type", "IsClosed", "IsWon", "CloseDate") VALUES '
        "('0068d00000000AAAAA', 'Ada renewal', 'Closed Won', 'Renewal', true, true, DATE '2026-05-10'), "
        "('0068d00000000BBAAA', 'Bob deal', 'Closed Lost', 'New Business', true, false, DATE '2026-05-11')",
        [],
    )
    org._exec(
        'INSERT INTO "OpportunityContactRole" ("Id", "OpportunityId", "ContactId", "IsPrimary") VALUES '
        "('00K8d00000000AAAAA', '0068d00000000AAAAA', ?, true), ('00K8d00000000BBAAA', '0068d00000000BBAAA', ?, true)",
        [ada, bob],
    )
    args = ("calibrate", "--as-of", "2026-06-15", "--since", "2026-05-01", "--horizon", "30")
    done = cli(org.folder, DEFAULT_RULES, *args)
    assert done.returncode == 0, done.stderr
    head, left = done.stdout.splitlines()[:2]
    assert "rungs on the first of each month from 2026-05-01 to 2026-05-01 (1 month)" in head
    assert left == (
        "left out: 2026-06-01 (1 month): the shortest horizon, 30 days, runs past 2026-06-14, the last day the CRM "
        "data covers (its newest activity, won deal or bounce; the evaluation date is 2026-06-15), so what followed "
        "is not in the data yet"
    )
    assert "won_deal (good, within 30 days by --horizon; the rule file says 180)" in done.stdout
    assert "  Friend                    1         1  100.0%" in done.stdout
    # One month cannot be split into tuning and recent months: said so, with how many a split needs.
    assert (
        "  days 2026-05-01 to 2026-05-01; out of time: too few months to split (1 month measured; a split needs at "
        "least 7: the last 6 as recent and one or more before them); an earlier --since measures more"
    ) in done.stdout.splitlines()
    assert "tuning before -" not in done.stdout
    data = json.loads(cli(org.folder, DEFAULT_RULES, *args, "--json").stdout)
    won = next(o for o in data["outcomes"] if o["name"] == "won_deal")
    assert [(r["rung"], r["n"], r["hits"]) for r in won["rungs"][:2]] == [("Fringe", 1, 0), ("Friend", 1, 1)]
    assert data["days"] == ["2026-05-01"]
    assert data["left_out"]["days"] == ["2026-06-01"]
    assert data["left_out"]["why"] == left
    assert data["last_day"] == "2026-06-14"


def test_a_horizon_set_on_the_command_line_is_the_one_the_table_says(org: Org) -> None:
    """The rule file's `replied` says "an email they wrote to us within 30 days". Measured with `--horizon 90`,
    the table and JSON say 90 days, in its words too, and that the rule file's horizon is 30."""
    ada = org.contact("Ada", known_for_days=400)
    for days_ago in (20, 130, 200):
        org.reply(ada, days_ago)
    written_to_yesterday(org)
    args = ("calibrate", "--as-of", "2026-06-15", "--since", "2026-01-01", "--horizon", "90")
    done = cli(org.folder, DEFAULT_RULES, *args)
    assert done.returncode == 0, done.stderr
    assert (
        "replied (good, within 90 days by --horizon; the rule file says 30): an email they wrote to us within 90 days"
    ) in done.stdout.splitlines()
    assert "within 30 days" not in done.stdout
    # 1 January to 1 March: 90 days later is on or before 14 June; 1 April is not.
    assert "rungs on the first of each month from 2026-01-01 to 2026-03-01 (3 months)" in done.stdout
    data = json.loads(cli(org.folder, DEFAULT_RULES, *args, "--json").stdout)
    replied = next(o for o in data["outcomes"] if o["name"] == "replied")
    assert (replied["horizon_days"], replied["declared_horizon_days"]) == (90, 30)
    assert replied["says"] == "an email they wrote to us within 90 days"
    silent = next(o for o in data["outcomes"] if o["name"] == "went_silent")
    assert silent["says"].endswith("for 90 days")


def _unearned_warnings(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.split(": warning: ")[1] for line in done.stdout.splitlines() if "in the local CRM's history" in line]


def test_a_demo_made_on_a_past_day_is_calibrated_up_to_the_day_its_data_ends(tmp_path: Path) -> None:
    """A newcomer makes the demo as of 15 June 2026 and, months later, runs calibrate and rules check without
    --as-of (here: as of 7 December, their today). The demo's data ends on 14 June; the months after it are not
    read as every contact falling silent: calibrate measures the very months, with the very figures, it measures
    as of 15 June, says the later months are left out and why, and rules check warns of exactly what it warns of
    then (counting those months, it warned that Familiar and Faithful do not earn more replies)."""
    made = cli(tmp_path, DEFAULT_RULES, "demo", "--contacts", "1000", "--as-of", "2026-06-15")
    assert made.returncode == 0, made.stderr

    def calibrated(as_of: str) -> dict[str, Any]:
        done = cli(tmp_path, DEFAULT_RULES, "calibrate", "--json", "--as-of", as_of)
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    then, today = calibrated("2026-06-15"), calibrated("2026-12-07")
    assert today["last_day"] == then["last_day"] == "2026-06-14"
    assert today["days"] == then["days"]
    assert (today["days"][0], today["days"][-1], len(today["days"])) == ("2023-06-01", "2026-05-01", 36)
    left = [f"2026-{m:02d}-01" for m in range(6, 13)]
    assert today["left_out"]["days"] == left
    assert today["left_out"]["why"].startswith(
        "left out: 2026-06-01 to 2026-12-01 (7 months): the shortest horizon, 30 days, runs past 2026-06-14"
    )
    assert [o["last_day"] for o in today["outcomes"] if o["name"] == "replied"] == ["2026-05-01"]
    assert all(o["last_day"] <= today["days"][-1] for o in today["outcomes"])
    for key in ("as_of", "left_out", "cpu_seconds"):
        del then[key], today[key]
    assert today == then

    warned_then = _unearned_warnings(cli(tmp_path, DEFAULT_RULES, "rules", "check", "--as-of", "2026-06-15"))
    warned_today = _unearned_warnings(cli(tmp_path, DEFAULT_RULES, "rules", "check", "--as-of", "2026-12-07"))
    assert warned_then  # the demo's Familiar is, on purpose, no better than Friend at winning deals
    assert warned_today == warned_then
    assert not [w for w in warned_today if "on outcome 'replied'" in w]


def test_rules_without_outcomes_are_told_how_to_add_them(org: Org) -> None:
    """An admin points calibrate at a rule file without an `outcomes:` section: it stops before reading the data,
    exit 2 (wrong use: there is nothing to measure the rungs against), saying how to add outcomes and where the
    docs are. simulate still simulates, with one line saying why its calibration is left out, and the report's
    calibration section is that one line."""
    org.contact("Ada")
    bare = org.folder / "bare.yaml"
    text = DEFAULT_RULES.read_text()
    bare.write_text(text[: text.index("\noutcomes:")] + "\n")
    done = cli(org.folder, bare, "calibrate", "--as-of", "2026-06-15")
    assert done.returncode == 2, done.stdout + done.stderr
    why = (
        "declares no outcomes, so there is nothing to measure the rungs against: add an `outcomes:` section after "
        "`flags:` (the default rules/ladder.yaml has six to copy; see docs/calibration.md)"
    )
    assert f"bare.yaml {why}" in done.stderr
    assert "no month" not in done.stdout + done.stderr

    simulated = cli(org.folder, bare, "simulate", "--rules", str(bare), "--as-of", "2026-06-15", "--weeks", "0")
    assert simulated.returncode == 0, simulated.stderr
    assert [line for line in simulated.stdout.splitlines() if line.startswith("Calibration left out: ")] == [
        f"Calibration left out: {bare} {why}"
    ]
    page = org.folder / "report.html"
    reported = cli(org.folder, bare, "report", "--as-of", "2026-06-15", "--weeks", "0", "--out", str(page))
    assert reported.returncode == 0, reported.stderr
    html = page.read_text()
    assert 'Is each rung earned? (calibration)</h2><p class="note">Left out: ' in html
    assert "declares no outcomes, so there is nothing to measure the rungs against" in html


def test_a_period_with_nothing_to_measure_says_why_and_what_to_try(org: Org) -> None:
    """The data ends on 14 June. Calibrated in December from 20 November, or with a horizon of a hundred years,
    no month can be measured: instead of an empty table the admin reads why, and the --since or --horizon that
    would measure something."""
    written_to_yesterday(org)
    late = cli(org.folder, DEFAULT_RULES, "calibrate", "--as-of", "2026-12-07", "--since", "2026-11-20")
    assert late.returncode == 0, late.stderr
    lines = late.stdout.splitlines()
    assert lines[0].startswith("Calibration as of 2026-12-07: rungs on no month; rules ")
    assert (
        "nothing measured: no first of a month from 2026-11-20 is 30 days or more before 2026-06-14, the last day the "
        "CRM data covers; try an earlier --since (on or before 2026-05-01)"
    ) in lines
    long = cli(org.folder, DEFAULT_RULES, "calibrate", "--as-of", "2026-12-07", "--horizon", "36500", "--json")
    assert long.returncode == 0, long.stderr
    data = json.loads(long.stdout)
    assert data["days"] == [] and data["outcomes"] == []
    assert data["nothing_measured"].endswith("try a shorter --horizon (at most 1109 days from 2023-06-01)")


def test_since_after_the_evaluation_date_is_refused_before_any_work(org: Org) -> None:
    done = cli(org.folder, DEFAULT_RULES, "calibrate", "--as-of", "2026-06-15", "--since", "2026-07-01")
    assert done.returncode == 2
    assert "is not before the evaluation date 2026-06-15" in done.stderr


def test_an_org_calibrated_in_batches_of_contacts_gets_the_same_table_and_deals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A million contacts are computed in batches (timeline.BATCH); batches of 40 here give what one batch gives,
    for the demo's deals and for calibrate's counts."""

    def run(folder: Path) -> tuple[list[tuple[object, ...]], dict[str, object]]:
        rules = compiler.load(DEFAULT_RULES)
        crm = LocalCrm.create(folder / "crm.duckdb")
        try:
            demo.generate(crm, contacts=150, seed=3, as_of=AS_OF)
            demo_outcomes.add(crm, rules, seed=3, as_of=AS_OF)
            deals = crm.con.execute('SELECT * FROM "Opportunity" ORDER BY "Id"').fetchall()
            crm.prepare(Config().fields)
            cal = calibrate.calibrate(crm.con, rules, AS_OF, horizon=60)
        finally:
            crm.close()
        return deals, calibrate_text.as_dict(cal) | {"cpu_seconds": None}

    (tmp_path / "one").mkdir()
    (tmp_path / "many").mkdir()
    one = run(tmp_path / "one")
    monkeypatch.setattr(timeline, "BATCH", 40)
    many = run(tmp_path / "many")
    assert one[0] and one == many


def _on(outcome: dict[str, Any], rung: str) -> int:
    return int(next(r["n"] for r in outcome["rungs"] if r["rung"] == rung))


def test_simulate_and_the_report_show_both_rule_sets_calibrated(org: Org) -> None:
    """An admin tries a rule file whose Friend needs two conversations: simulate lists each outcome's figures per
    rung under both rule sets (contact-months, rate, 95% interval, lift), in text and JSON, measured with the
    horizon `--horizon` gives, and the report page carries the calibration section, with that horizon too."""
    ada = org.contact("Ada", known_for_days=400)
    for days_ago in (50, 70, 100, 130):
        org.reply(ada, days_ago)
    bob = org.contact("Bob", known_for_days=400)
    org.reply(bob, 70)
    written_to_yesterday(org)
    stricter = org.folder / "stricter.yaml"
    stricter.write_text(
        DEFAULT_RULES.read_text().replace("- when: conversations_180d >= 1\n", "- when: conversations_180d >= 2\n")
    )
    args = ("--as-of", "2026-06-15", "--weeks", "0")
    text = cli(org.folder, DEFAULT_RULES, "simulate", "--rules", str(stricter), *args)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert any(line.startswith("Calibration, current rules beside new rules; rungs on the first") for line in lines)
    at = lines.index("  replied (good, within 30 days): an email they wrote to us within 30 days")
    half = " contact-months    rate  95% interval   lift"
    assert lines[at + 2] == f"    rung        {half}  | {half}"
    data = json.loads(cli(org.folder, DEFAULT_RULES, "simulate", "--rules", str(stricter), *args, "--json").stdout)
    current = {o["name"]: o for o in data["calibration"]["current"]["outcomes"]}
    new = {o["name"]: o for o in data["calibration"]["new"]["outcomes"]}
    # Bob, one reply in April, stood on Friend on 1 May under the current rules and on Fringe under the new ones.
    assert _on(current["replied"], "Friend") > _on(new["replied"], "Friend")
    # Each side's row shows what the JSON holds for it: contact-months, rate, interval and lift.
    fringe = lines[at + 3]
    for side, figures in zip(fringe.split("|"), (current, new), strict=True):
        row = next(r for r in figures["replied"]["rungs"] if r["rung"] == "Fringe")
        assert f"{row['n']:,}" in side
        assert f"{100 * row['low']:.1f}-{100 * row['high']:.1f}%" in side
    friend = lines[at + 4].split("|")[0]
    row = next(r for r in current["replied"]["rungs"] if r["rung"] == "Friend")
    assert row["lift"] is not None and f"{row['lift']:.2f}x" in friend

    longer = cli(org.folder, DEFAULT_RULES, "simulate", "--rules", str(stricter), *args, "--horizon", "60")
    assert longer.returncode == 0, longer.stderr
    assert (
        "  replied (good, within 60 days by --horizon; the rule file says 30): an email they wrote to us within 60 days"
    ) in longer.stdout.splitlines()
    page = org.folder / "report.html"
    done = cli(
        org.folder, DEFAULT_RULES, "report", "--simulate", str(stricter), *args, "--horizon", "60", "--out", str(page)
    )
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    assert "Is each rung earned? (calibration)" in html
    assert "<h3>replied (good, within 60 days by --horizon; the rule file says 30)</h3>" in html
    assert "an email they wrote to us within 60 days." in html
    # Two contacts reach no top rung: the page says which rungs have no contact-month and points to --horizon.
    assert "Forever have no contact-month within 60 days of a measured month: a shorter --horizon (e.g. " in html


def test_a_bounce_and_an_inactive_contact_count_on_the_day_they_went(org: Org) -> None:
    """Ada talked to us all spring and her email bounced on 10 May (EmailBouncedDate): gone within 30 days of
    1 May, when she stood on Friend. Cy, marked inactive by the org's own checkbox (Inactive__c) with no date,
    last wrote on 20 March: counted gone from 21 March (within 30 days of 1 March), and the months after it are
    left out. Dee, inactive with the day in Inactive_Date__c (12 May), counts on 1 May."""
    ada = org.contact("Ada", known_for_days=400)
    for days_ago in (50, 70, 100, 130):
        org.reply(ada, days_ago)
    cy = org.contact("Cy", known_for_days=400)
    org.reply(cy, (AS_OF - dt.date(2026, 3, 20)).days)
    dee = org.contact("Dee", known_for_days=400)
    written_to_yesterday(org)
    org._exec('ALTER TABLE "Contact" ADD COLUMN "Inactive__c" BOOLEAN', [])
    org._exec('ALTER TABLE "Contact" ADD COLUMN "Inactive_Date__c" DATE', [])
    org._exec(
        'UPDATE "Contact" SET "IsEmailBounced" = true, "EmailBouncedDate" = TIMESTAMP \'2026-05-10 08:30:00\' '
        'WHERE "Id" = ?',
        [ada],
    )
    org._exec('UPDATE "Contact" SET "Inactive__c" = true WHERE "Id" = ?', [cy])
    org._exec(
        'UPDATE "Contact" SET "Inactive__c" = true, "Inactive_Date__c" = DATE \'2026-05-12\' WHERE "Id" = ?', [dee]
    )
    rules = org.folder / "inactive.yaml"
    rules.write_text(
        DEFAULT_RULES.read_text().replace(
            "      # inactive_field: Inactive__c",
            "      inactive_field: Inactive__c\n      inactive_since_field: Inactive_Date__c\n      #",
        )
    )
    args = ("calibrate", "--as-of", "2026-06-15", "--since", "2026-03-01", "--horizon", "30", "--json")
    done = cli(org.folder, rules, *args)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    gone = next(o for o in data["outcomes"] if o["name"] == "gone")
    by_rung = {r["rung"]: (r["n"], r["hits"]) for r in gone["rungs"] if r["n"]}
    # 1 March, 1 April, 1 May: Ada (Friend throughout) 3 months, one hit; Dee (Fringe) 3 months, one hit; Cy
    # (Fringe on 1 March, which his 20 March email does not change) 1 month, gone on 21 March, after it nothing.
    assert by_rung == {"Friend": (3, 1), "Fringe": (4, 2)}
    assert not [n for n in data["notes"] if "'gone'" in n]  # (this org has no deals: those outcomes are left out)


def test_a_gone_field_the_crm_data_lacks_is_named_and_the_others_still_count(org: Org) -> None:
    """The rule file names Inactive__c, which this CRM does not have: calibrate says so, and still counts bounces."""
    ada = org.contact("Ada", known_for_days=400)
    org.reply(ada, 50)
    written_to_yesterday(org)
    org._exec(
        'UPDATE "Contact" SET "IsEmailBounced" = true, "EmailBouncedDate" = TIMESTAMP \'2026-05-10 08:30:00\' '
        'WHERE "Id" = ?',
        [ada],
    )
    rules = org.folder / "inactive.yaml"
    rules.write_text(
        DEFAULT_RULES.read_text().replace(
            "      # inactive_field: Inactive__c", "      inactive_field: Inactive__c\n      #"
        )
    )
    done = cli(org.folder, rules, "calibrate", "--as-of", "2026-06-15", "--since", "2026-05-01", "--horizon", "30")
    assert done.returncode == 0, done.stderr
    assert "outcome 'gone': the CRM data holds no Contact.Inactive__c" in done.stdout
    assert "gone (bad, within 30 days by --horizon; the rule file says 180)" in done.stdout


def test_a_local_crm_from_before_the_bounce_fields_gets_them_empty_and_calibrates(org: Org) -> None:
    """A CRM made before the bounce fields existed gets them, empty, when opened: the gone outcome finds no bounce
    rather than a missing column."""
    ada = org.contact("Ada", known_for_days=400)
    org.reply(ada, 50)
    written_to_yesterday(org)
    org.sync()
    con = duckdb.connect(str(org.database))
    for name in ("IsEmailBounced", "EmailBouncedDate", "EmailBouncedReason"):
        con.execute(f'ALTER TABLE "Contact" DROP COLUMN "{name}"')
    con.close()
    done = cli(org.folder, DEFAULT_RULES, "calibrate", "--as-of", "2026-06-15", "--since", "2026-05-01", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert not [o for o in data["outcomes"] if o["name"] == "gone"]  # no bounce at all: left out, and said why
    assert [n for n in data["notes"] if n.startswith("outcome 'gone' left out: the CRM data holds no contact whose")]
    assert not [n for n in data["notes"] if "holds no Contact" in n]


@pytest.fixture(scope="module")
def demo_without_deals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo org as an org without deals or bounce management would export it: Opportunity and
    OpportunityContactRole empty (an export made without Opportunity.csv imports into empty tables), and no
    contact's email bounced."""
    folder = tmp_path_factory.mktemp("no-deals")
    made = cli(folder, DEFAULT_RULES, "demo", "--contacts", "1000", "--as-of", "2026-06-15")
    assert made.returncode == 0, made.stderr
    con = duckdb.connect(str(folder / "crm.duckdb"))
    try:
        con.execute('DELETE FROM "OpportunityContactRole"')
        con.execute('DELETE FROM "Opportunity"')
        con.execute('UPDATE "Contact" SET "IsEmailBounced" = false, "EmailBouncedDate" = NULL')
    finally:
        con.close()
    return folder


def test_an_org_without_deals_or_bounces_gets_those_outcomes_left_out_and_named(demo_without_deals: Path) -> None:
    """An admin whose org keeps no deals calibrates: won_deal and renewal are not printed as 0% on every rung
    (which reads as "no rung is better than the one below"), nor is `gone` without a single bounce: each is left
    out with one line saying what the data lacks and what to import. The outcomes read from activities stay."""
    done = cli(demo_without_deals, DEFAULT_RULES, "calibrate", "--as-of", "2026-06-15", "--horizon", "30")
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stdout.splitlines() if line.startswith("note: ")]
    hint = (
        "(import Opportunity.csv and OpportunityContactRole.csv, or sync from Salesforce with these rules; a "
        "warehouse copy names them under [warehouse])"
    )
    won = (
        "note: outcome 'won_deal' left out: the CRM data holds no won Opportunity with a contact role up to 2026-06-15"
    )
    renewal = (
        "note: outcome 'renewal' left out: the CRM data holds no won Opportunity of Type Renewal with a contact role "
        "up to 2026-06-15"
    )
    gone = (
        "note: outcome 'gone' left out: the CRM data holds no contact whose email bounced (Contact.IsEmailBounced or "
        "EmailBouncedDate) up to 2026-06-15, so every rung would read 0% (Salesforce sets the bounce fields when "
        "bounce management is on)"
    )
    assert notes == [f"{won} {hint}", f"{renewal} {hint}", gone]
    heads = [line.split(" (")[0] for line in done.stdout.splitlines() if " (good, " in line or " (bad, " in line]
    assert heads == ["gave_referral", "replied", "went_silent"]
    assert "not ordered: Friend is not above Fringe" not in done.stdout

    checked = cli(demo_without_deals, DEFAULT_RULES, "rules", "check", "--as-of", "2026-06-15")
    warned = _unearned_warnings(checked)
    assert not [w for w in warned if "'won_deal'" in w or "'renewal'" in w or "'gone'" in w], warned
    assert "0.0% of" not in checked.stdout


def test_each_rung_is_said_to_stand_clearly_above_the_one_below_or_not_clearly_or_not_at_all(
    demo_calibration: calibration.Calibration,
) -> None:
    """The demo's Familiar wins deals exactly as often as Friend: the table must not call it earned. Its rate may
    come out a little above Friend's, but the intervals overlap, so the verdict says "not clearly"; Friend over
    Fringe and Faithful over Familiar, which the generator made real, are "clearly"."""
    won = table(demo_calibration, "won_deal")
    standing = {s.rung: s.standing for s in won.steps()}
    assert standing["Friend"] == standing["Faithful"] == calibration.CLEARLY
    assert standing["Familiar"] in (calibration.NOT_CLEARLY, calibration.NOT_BETTER)
    assert won.earned is False
    said = calibrate_text.verdict(won)
    assert "Friend is clearly above Fringe" in said
    assert "Faithful is clearly above Familiar" in said
    assert (
        "Familiar is above Friend, not clearly (the intervals overlap: may be chance)" in said
        or "Familiar is not above Friend (within the intervals: may be chance)" in said
    ), said
    assert not said.startswith("earned")


def test_a_meaningless_rung_is_not_called_ordered_and_rules_check_warns_of_it(tmp_path: Path) -> None:
    """An admin adds a rung between Friend and Familiar that means nothing (the first name holds an 'a'). Its rate
    lands near Friend's by chance, maybe a little above: calibrate says it is not clearly above Friend, and
    `rules check` (on the outcomes' own horizons) warns of it where it is above Friend within the intervals,
    since both rungs have at least 200 contact-months (the least it compares)."""
    made = cli(tmp_path, DEFAULT_RULES, "demo", "--contacts", "1000", "--as-of", "2026-06-15")
    assert made.returncode == 0, made.stderr
    text = DEFAULT_RULES.read_text()
    at = text.index("  - name: Familiar")
    meaningless = tmp_path / "meaningless.yaml"
    meaningless.write_text(
        text[:at]
        + "  - name: Lettered\n    means: An 'a' in the first name, which says nothing.\n"
        + '    next_step: "Nothing to do"\n    keep_step: "nothing to do"\n    requires:\n'
        + "      - when: first_name LIKE '%a%'\n        says: an 'a' in the first name\n"
        + text[at:]
    )
    done = cli(tmp_path, meaningless, "calibrate", "--as-of", "2026-06-15", "--horizon", "14", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    won = next(o for o in data["outcomes"] if o["name"] == "won_deal")
    steps = {s["rung"]: s["standing"] for s in won["steps"]}
    assert steps["Lettered"] in ("not clearly", "not"), won["steps"]
    assert won["earned"] is False
    checked = cli(tmp_path, meaningless, "rules", "check", "--as-of", "2026-06-15", str(meaningless))
    warned = [w for w in _unearned_warnings(checked) if w.startswith("rung 'Lettered'")]
    assert [w for w in warned if "is above 'Friend' but not clearly (the 95% intervals overlap" in w], warned
    assert all("warned because both rungs have at least 200 contact-months" in w for w in warned)
