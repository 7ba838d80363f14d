"""An admin asks the report who moved, who is slipping and what holds contacts back, for one owner at a time; each
salesperson gets a digest of their own contacts (issue 12, items 4 and 5)."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys
from pathlib import Path

from connector import ids
from tests.conftest import DEFAULT_RULES, Org
from tests.journeys import test_simulate_report as shared
from tests.journeys.test_simulate_report import browse, cli, console_errors, raised_threshold

chromium = shared.chromium  # the browser fixture of the report tests, under its own name
MAYA, TOM = ids.make(ids.USER, 901), ids.make(ids.USER, 902)
LATER = 35  # days after the first sync: Ada has climbed, Bea's listening call has left the 120-day window


HARBOR = "Harbor Logistics"  # Cy's account; Ada and Bea have none


def team(org: Org) -> dict[str, str]:
    """Two owners. Ada (Maya's) climbs from Friend to Familiar between the syncs; Bea (Tom's) stops meeting
    Familiar and is held by the 30-day grace period; Cy (Maya's, at Harbor Logistics) gave feedback nobody
    thanked."""
    for uid, name in ((MAYA, "Maya Lindqvist"), (TOM, "Tom Becker")):
        org._exec(
            'INSERT INTO "User" ("Id", "Name", "Email", "IsActive") VALUES (?, ?, ?, true)',
            [uid, name, f"{name.split()[0].lower()}@example.com"],
        )
    ada = org.contact("Ada", OwnerId=MAYA)
    org.reply(ada, 10)
    bea = org.familiar_contact("Bea")
    org._exec('UPDATE "Contact" SET "OwnerId" = ? WHERE "Id" = ?', [TOM, bea])
    cy = org.contact("Cy", OwnerId=MAYA, AccountId=org.account(HARBOR))
    org.reply(cy, 12)
    org.sync()
    org.meeting(ada, -30, "Discovery session")
    org.reply(ada, -31)
    org.reply(ada, -32)
    org.task(cy, -20, "Feedback on the pilot")
    org.sync(days_later=LATER)
    return {"ada": ada, "bea": bea, "cy": cy}


def later(org: Org) -> str:
    return (org.as_of + dt.timedelta(days=LATER)).isoformat()


def main_text(dom: str) -> str:
    """The filtered part of the page as text."""
    part = dom.split('<main id="tl-view">', 1)[1].split("</main>", 1)[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", part))


def render(chromium: str, page: Path, folder: Path, fragment: str = "") -> str:
    proc = (
        browse(chromium, page.with_name(page.name), folder, "--dump-dom")
        if not fragment
        else subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                f"--user-data-dir={folder / 'profile'}",
                "--proxy-server=http://127.0.0.1:9",
                "--enable-logging=stderr",
                "--v=0",
                "--virtual-time-budget=5000",
                "--dump-dom",
                page.as_uri() + fragment,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=180,
        )
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console_errors(proc.stderr) == []
    return proc.stdout


def test_the_report_says_who_moved_who_is_held_and_what_holds_them_back_and_narrows_to_one_owner(
    org: Org, chromium: str, tmp_path: Path
) -> None:
    c = team(org)
    out = tmp_path / "report.html"
    proc = cli(org, "report", "--out", str(out), "--as-of", later(org))
    assert proc.returncode == 0, proc.stderr

    dom = render(chromium, out, tmp_path)
    headings = re.findall(r"<h2[^>]*>(.*?)</h2>", dom)
    assert headings == [  # a manager's questions first, the admin's detail after
        "The ladder, month by month",
        "What holds them back",
        "Who is slipping",
        "Oldest open flags by owner",
        "For the admin: rules and movement",
        "The ladder",
        "Movement",
        "Who moved since the previous run",
        "Open flags",
        "Rungs by owner",
        "Is each rung earned? (calibration)",  # the default rules declare outcomes
    ]
    shown = main_text(dom)
    assert f"Ada Tester (no account, {c['ada']}) Friend Familiar {later(org)}" in shown  # from -> to, named
    # Bea's discovery call (day -90) left the 120-day window on day 30: held to day 60, whenever a sync looks.
    until = (org.as_of + dt.timedelta(days=60)).isoformat()
    assert (
        f"{until} Bea Tester (no account, {c['bea']}) Tom Becker Familiar Friend held by the demotion grace period"
    ) in shown
    # Cy's feedback (day 20) has gone unthanked since it turned 8 days old, on day 28: open 7 days on day 35
    opened = (org.as_of + dt.timedelta(days=28)).isoformat()
    oldest = shown.split("Oldest open flags by owner", 1)[1].split("For the admin", 1)[0]
    assert f"Maya Lindqvist 1 0 7 Cy Tester ({HARBOR}, {c['cy']}) Missing thank-you {opened}" in oldest  # per owner
    assert f"7 Cy Tester ({HARBOR}, {c['cy']}) Maya Lindqvist Missing thank-you {opened}" in oldest  # the oldest
    # Cy, on Friend, fails the listening criterion of Familiar, and the conversations one too
    assert "Familiar a listening conversation in the last 120 days 1 1 0" in shown
    assert f"{later(org)} 0 1 2 0 0" in shown.split("What holds them back", 1)[0]  # the trend: all three
    assert re.search(r'<option value="\d">Maya Lindqvist</option>', dom)
    assert dom.count('class="main-svg"') > 6  # every chart drawn

    only_tom = render(chromium, out, tmp_path, f"#owner={TOM}")  # the filter, driven through the address
    shown = main_text(only_tom)
    assert 'data-owner="' + TOM + '"' in only_tom
    assert "Bea Tester" in shown
    assert "Ada Tester" not in shown
    trend = shown.split("The ladder, month by month", 1)[1].split("What holds them back", 1)[0]
    assert f"{later(org)} 0 0 1 0 0" in trend  # the trend narrows too: Tom's one contact, Bea, held on Familiar
    assert "Nobody moved." in shown  # Tom's contacts did not move
    assert re.search(r"Contacts 1 ", shown)
    assert only_tom.count('class="main-svg"') > 6


def test_a_simulated_rule_change_shows_the_flapping_of_both_rule_sets(org: Org, chromium: str, tmp_path: Path) -> None:
    team(org)
    out = tmp_path / "sim.html"
    proc = cli(
        org,
        "report",
        "--simulate",
        str(raised_threshold(org.folder)),
        "--out",
        str(out),
        "--as-of",
        later(org),
        "--weeks",
        "8",
    )
    assert proc.returncode == 0, proc.stderr
    shown = main_text(render(chromium, out, tmp_path))
    assert "Over the replay current rules new rules" in shown
    assert "changed more than once (flapping)" in shown
    assert "Flapping (current rules)" in shown
    assert "What holds them back" in shown
    assert "regular two-way contact (4 conversations in 180 days" in shown  # the new rules' criterion


def test_the_digest_tells_each_owner_what_to_do_today_then_who_moved_and_the_rest(
    org: Org, chromium: str, tmp_path: Path
) -> None:
    c = team(org)
    before = org.snapshot()
    out = tmp_path / "digest"
    proc = cli(org, "digest", "--out", str(out), "--as-of", later(org))
    assert proc.returncode == 0, proc.stderr
    assert "Digest for 2 owners" in proc.stdout
    assert org.snapshot() == before, "the digest wrote to the CRM"
    index = (out / "owners.tsv").read_text().splitlines()
    assert index[0] == "owner_id\tname\temail\ttext\thtml"
    assert f"{MAYA}\tMaya Lindqvist\tmaya@example.com\t{MAYA}.txt\t{MAYA}.html" in index

    maya = (out / f"{MAYA}.txt").read_text()
    assert maya.startswith("Trust ladder digest for Maya Lindqvist")
    # Cy's feedback (day -20, 35 days after the first sync) is owed a thank-you: the flag opened when the trigger
    # turned old enough, and today is the first thing Maya reads, with the Id that tells two Cys apart.
    today = maya.split("To do today (1)\n", 1)[1].split("\n\n", 1)[0]
    opened = re.search(
        rf"1\. Cy Tester \({HARBOR}, {c['cy']}\): Friend: Missing thank-you open (\d+) days \(since ", today
    )
    assert opened, today
    assert 0 < int(opened.group(1)) <= LATER - 20
    assert "   Next step: Send Cy a thank-you" in today
    assert f"- Ada Tester (no account, {c['ada']}) went up from Friend to Familiar" in maya
    assert "No other open flags." in maya
    assert "Nobody else is slipping." in maya
    tom = (out / f"{TOM}.txt").read_text()
    until = org.as_of + dt.timedelta(days=60)
    left = (until - (org.as_of + dt.timedelta(days=LATER))).days
    assert (
        f"1. Bea Tester (no account, {c['bea']}): drops from Familiar to Friend on {until.day} "
        f"{until.strftime('%b %Y')}, in {left} days"
    ) in tom
    # The step the contact record shows, keep step and date first (not a criterion in its place)
    assert (
        f"   Next step: To stay Familiar past {until.day} {until.strftime('%b %Y')}: book a listening conversation"
    ) in tom
    assert "Nobody moved." in tom
    assert "http" not in maya + tom  # the local CRM has no address to link to

    dom = render(chromium, out / f"{MAYA}.html", tmp_path)
    last = org.as_of + dt.timedelta(days=LATER)  # since the last sync, by default
    assert re.findall(r"<h2>(.*?)</h2>", dom) == [
        "To do today",
        f"Who moved since {last.day} {last.strftime('%b %Y')}",
        "Other open flags, oldest first",
        "Also slipping",
    ]
    assert "Ada Tester" in dom
    assert "Nobody else is slipping." in dom

    one = tmp_path / "one"
    proc = cli(
        org,
        "digest",
        "--out",
        str(one),
        "--owner",
        TOM.lower(),
        "--since",
        org.as_of.isoformat(),
        "--as-of",
        later(org),
    )  # typed in lower case: the 18-character Id's suffix gives its case back
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in one.iterdir()) == [f"{TOM}.html", f"{TOM}.txt", "owners.tsv"]

    fifteen = tmp_path / "fifteen"  # the 15-character form of the same Id, as a Salesforce URL shows it
    proc = cli(org, "digest", "--out", str(fifteen), "--owner", TOM[:15], "--as-of", later(org))
    assert proc.returncode == 0, proc.stderr
    assert (fifteen / f"{TOM}.txt").exists()


def test_the_digest_dates_itself_from_the_last_sync_not_the_machine_clock(org: Org, tmp_path: Path) -> None:
    """The second sync evaluated the org 35 days after the first: a digest without --as-of describes that day,
    whatever today is on the machine that runs it."""
    team(org)
    out = tmp_path / "digest"
    proc = cli(org, "digest", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    day = org.as_of + dt.timedelta(days=LATER)
    assert (
        (out / f"{MAYA}.txt")
        .read_text()
        .startswith(f"Trust ladder digest for Maya Lindqvist, {day.day} {day.strftime('%b %Y')}\n")
    )


def test_a_first_digest_after_a_first_sync_fits_one_screen_before_its_list(org: Org, tmp_path: Path) -> None:
    """A first sync puts every contact on the ladder: the digest says so in one line per rung (not one line per
    contact), and what to do today, then the placements, fit a 24-line terminal before the list of flags."""
    org.load_demo(contacts=400, seed=3)
    org.sync()
    out = tmp_path / "digest"
    proc = cli(org, "digest", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    biggest = (out / "owners.tsv").read_text().splitlines()[1].split("\t")[3]
    page = (out / biggest).read_text()
    head, rest = page.split("\nOther open flags, oldest first", 1)
    assert len(head.splitlines()) <= 24, head
    placed = re.findall(r"^- (Fringe|Friend|Familiar|Faithful|Forever): ([\d,]+)$", head, re.MULTILINE)
    assert [r for r, _ in placed] == [r for r in ("Fringe", "Friend", "Familiar", "Faithful", "Forever") if r in head]
    n = int(re.search(r"Your ([\d,]+) contacts", head).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert sum(int(v.replace(",", "")) for _, v in placed) == n
    assert "is now on the ladder" not in page
    assert "Who moved" not in page  # nobody moved: they were placed
    items = re.findall(r"^\d\. .*$", head, re.MULTILINE)
    assert len(items) == 5  # a demo book has holds ending soon and flags open long
    ages = [int(a) for a in re.findall(r"open (\d+) days", rest)]
    assert ages == sorted(ages, reverse=True)  # the rest of the flags, oldest first
    assert ages and max(ages) <= min(int(a) for a in re.findall(r"open (\d+) days", head))


def test_the_digest_reads_the_salesforce_mirror_without_calling_salesforce(org: Org, tmp_path: Path) -> None:
    team(org)
    shutil.copy(org.database, org.folder / "mirror.duckdb")
    config = org.folder / "sf.toml"
    config.write_text(
        f'[crm]\nbackend = "salesforce"\n[salesforce]\nusername = "a@b.c"\nmirror = "mirror.duckdb"\n'
        f'[state]\npath = "state.duckdb"\n[rules]\npath = "{DEFAULT_RULES}"\n'
    )
    out = tmp_path / "digest"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "connector",
            "--log-format",
            "json",
            "--config",
            str(config),
            "digest",
            "--out",
            str(out),
            "--as-of",
            later(org),
        ],
        cwd=org.folder,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HTTPS_PROXY": "http://127.0.0.1:9"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "went up from Friend to Familiar" in (out / f"{MAYA}.txt").read_text()


def test_explain_says_since_when_a_flag_has_been_open_as_the_digest_does(org: Org, tmp_path: Path) -> None:
    c = team(org)
    proc = cli(org, "explain", c["cy"], "--as-of", later(org))
    assert proc.returncode == 0, proc.stderr
    found = re.search(r"Missing thank-you: OPEN for (\d+) days \(since (\d{4}-\d\d-\d\d)\)", proc.stdout)
    assert found, proc.stdout
    opened = dt.date.fromisoformat(found.group(2))
    assert (org.as_of + dt.timedelta(days=LATER) - opened).days == int(found.group(1))
    assert org.day(-20) < opened <= org.as_of + dt.timedelta(days=LATER)  # after the feedback it thanks for
    out = tmp_path / "digest"
    assert cli(org, "digest", "--out", str(out), "--as-of", later(org)).returncode == 0
    assert f"Missing thank-you open {found.group(1)} days" in (out / f"{MAYA}.txt").read_text()
    listening = re.search(r"Missing listening: (.*?) - ", proc.stdout)
    assert listening and listening.group(1) == "not raised"
