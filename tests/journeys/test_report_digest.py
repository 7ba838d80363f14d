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


def team(org: Org) -> dict[str, str]:
    """Two owners. Ada (Maya's) climbs from Friend to Familiar between the syncs; Bea (Tom's) stops meeting
    Familiar and is held by the 30-day grace period; Cy (Maya's) gave feedback nobody thanked."""
    for uid, name in ((MAYA, "Maya Lindqvist"), (TOM, "Tom Becker")):
        org._exec(
            'INSERT INTO "User" ("Id", "Name", "Email", "IsActive") VALUES (?, ?, ?, true)',
            [uid, name, f"{name.split()[0].lower()}@example.com"],
        )
    ada = org.contact("Ada", OwnerId=MAYA)
    org.reply(ada, 10)
    bea = org.familiar_contact("Bea")
    org._exec('UPDATE "Contact" SET "OwnerId" = ? WHERE "Id" = ?', [TOM, bea])
    cy = org.contact("Cy", OwnerId=MAYA)
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
    assert f"Ada Tester ({c['ada']}) Friend Familiar {later(org)}" in shown  # from -> to, with the name
    # Bea's discovery call (day -90) left the 120-day window on day 30: held to day 60, whenever a sync looks.
    until = (org.as_of + dt.timedelta(days=60)).isoformat()
    assert f"{until} Bea Tester ({c['bea']}) Tom Becker Familiar Friend held by the demotion grace period" in shown
    # Cy's feedback (day 20) has gone unthanked since it turned 8 days old, on day 28: open 7 days on day 35
    opened = (org.as_of + dt.timedelta(days=28)).isoformat()
    oldest = shown.split("Oldest open flags by owner", 1)[1].split("For the admin", 1)[0]
    assert f"Maya Lindqvist 1 0 7 Cy Tester ({c['cy']}) Missing thank-you {opened}" in oldest  # per owner
    assert f"7 Cy Tester ({c['cy']}) Maya Lindqvist Missing thank-you {opened}" in oldest  # the oldest flags
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


def test_the_digest_tells_each_owner_who_moved_what_to_do_and_who_is_slipping(
    org: Org, chromium: str, tmp_path: Path
) -> None:
    team(org)
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
    assert "- Ada Tester went up from Friend to Familiar" in maya
    assert "Cy Tester (Friend): Missing thank-you" in maya
    assert "  Next step: " in maya
    assert "Nobody is slipping." in maya
    tom = (out / f"{TOM}.txt").read_text()
    until = org.as_of + dt.timedelta(days=60)
    assert f"- Bea Tester stays on Familiar until {until.day} {until.strftime('%b %Y')}, then drops to Friend" in tom
    assert "Nobody moved." in tom

    dom = render(chromium, out / f"{MAYA}.html", tmp_path)
    assert re.findall(r"<h2>(.*?)</h2>", dom)[1:] == [
        "Open flags: what to do next",
        "Slipping: who needs you before the date",
    ]
    assert "Ada Tester went up from Friend to Familiar" in dom
    assert "Nobody is slipping." in dom

    one = tmp_path / "one"
    proc = cli(
        org, "digest", "--out", str(one), "--owner", TOM, "--since", org.as_of.isoformat(), "--as-of", later(org)
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in one.iterdir()) == [f"{TOM}.html", f"{TOM}.txt", "owners.tsv"]


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
    assert "- Ada Tester went up from Friend to Familiar" in (out / f"{MAYA}.txt").read_text()
