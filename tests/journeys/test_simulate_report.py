"""An admin tries a rule change before it reaches the CRM (`simulate`), and shares the picture (`report`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from connector.crm.local.store import LocalCrm
from tests.conftest import DEFAULT_RULES, Org

THRESHOLD = (
    (
        "      - when: conversations_180d >= 3 OR two_way_quarters_2 = 2\n"
        "        says: regular two-way contact (3 conversations in 180 days,"
    ),
    (
        "      - when: conversations_180d >= 4 OR two_way_quarters_2 = 2\n"
        "        says: regular two-way contact (4 conversations in 180 days,"
    ),
)


def cli(org: Org, *args: str) -> subprocess.CompletedProcess[str]:
    config = org.folder / "trust-ladder.toml"
    config.write_text(
        f'[local]\ndatabase = "crm.duckdb"\n[state]\npath = "state.duckdb"\n[rules]\npath = "{DEFAULT_RULES}"\n'
    )
    return subprocess.run(
        [sys.executable, "-m", "connector", "--log-format", "json", "--config", str(config), *args],
        cwd=org.folder,
        capture_output=True,
        text=True,
        check=False,
    )


def raised_threshold(folder: Path) -> Path:
    text = DEFAULT_RULES.read_text()
    assert THRESHOLD[0] in text
    path = folder / "stricter.yaml"
    path.write_text(text.replace(*THRESHOLD))
    return path


def familiar(org: Org, name: str, conversations: int) -> str:
    """A contact with `conversations` two-way conversations in the last 180 days, one of them a listening one."""
    cid = org.contact(name, known_for_days=200)
    org.meeting(cid, 20, "Discovery session")
    for k in range(conversations - 1):
        org.reply(cid, 30 + 20 * k)
    return cid


def test_raising_a_threshold_shows_who_moves_from_familiar_to_friend_and_leaves_the_crm_untouched(org: Org) -> None:
    ada = familiar(org, "Ada", 3)
    familiar(org, "Bea", 4)  # clears the new bar too
    org.reply(org.contact("Cy"), 10)  # a Friend either way
    org.contact("Dee")  # on the Fringe either way
    org.sync()
    state = org.folder / "state.duckdb"
    before, state_before = org.snapshot(), state.read_bytes()

    proc = cli(
        org,
        "simulate",
        "--rules",
        str(raised_threshold(org.folder)),
        "--as-of",
        org.as_of.isoformat(),
        "--weeks",
        "4",
        "--json",
    )

    assert proc.returncode == 0, proc.stderr
    sim = json.loads(proc.stdout)
    assert sim["matrix"]["Familiar"] == {"Fringe": 0, "Friend": 1, "Familiar": 1, "Faithful": 0, "Forever": 0}
    assert sim["moved"] == 1
    assert sim["per_rung"]["new"] == {"Fringe": 1, "Friend": 2, "Familiar": 1, "Faithful": 0, "Forever": 0}
    # The new rules apply to the whole history: Ada never met the raised bar, so no grace period holds her.
    assert sim["held_by_grace"] == 0
    (sample,) = sim["samples"]
    assert (sample["contact_id"], sample["name"], sample["current"], sample["new"]) == (
        ada,
        "Ada Tester",
        "Familiar",
        "Friend",
    )
    assert sample["changes"][0] == (
        "Familiar: `conversations_180d >= 3 OR two_way_quarters_2 = 2` became "
        "`conversations_180d >= 4 OR two_way_quarters_2 = 2`: met -> not met "
        "(conversations_180d = 3, two_way_quarters_2 = 1)"
    )
    assert [f["label"] for f in sim["flags"]] == ["Missing thank-you", "Missing listening"]
    assert org.snapshot() == before, "simulate wrote to the CRM"
    assert state.read_bytes() == state_before, "simulate changed the state store"

    text = cli(
        org, "simulate", "--rules", str(raised_threshold(org.folder)), "--as-of", org.as_of.isoformat(), "--weeks", "0"
    )
    assert text.returncode == 0, text.stderr
    assert "Moving: 1 contact (25.0%); 1 Familiar -> Friend" in text.stdout
    assert f"Familiar -> Friend  {ada}  Ada Tester" in text.stdout
    assert "Nothing was written to the CRM." in text.stdout


def test_the_replay_counts_a_contact_that_climbs_and_falls_back_as_flapping(org: Org) -> None:
    # Flo talks to us twice, then has a discovery meeting 165 days ago: Friend, then Familiar. The listening
    # meeting leaves the 120-day window 45 days ago; the demotion grace holds her 30 days (to 15 days ago), then
    # she falls back: the first weekly sync after that, 14 days ago, writes it.
    flo = org.contact("Flo", known_for_days=400)
    org.reply(flo, 180)
    org.reply(flo, 175)
    org.meeting(flo, 165, "Discovery session")
    steady = org.contact("Sam", known_for_days=400)
    org.reply(steady, 200)
    org.contact("New", known_for_days=20)  # created during the replay: its first placement is not a change
    before = org.snapshot()

    proc = cli(
        org, "simulate", "--rules", str(DEFAULT_RULES), "--as-of", org.as_of.isoformat(), "--weeks", "25", "--json"
    )

    assert proc.returncode == 0, proc.stderr
    replay = json.loads(proc.stdout)["replay"]
    assert (replay["start"], replay["end"]) == (org.day(175).isoformat(), org.as_of.isoformat())
    promoted, demoted = org.day(161).isoformat(), org.day(14).isoformat()
    assert {d: n for d, n in replay["changes"].items() if n} == {promoted: 1, demoted: 1}
    assert (replay["changed"], replay["flapping"], replay["reversed"]) == (1, 1, 1)
    assert org.snapshot() == before


def test_simulate_counts_agree_with_sync_or_say_what_differs(org: Org) -> None:
    """Issue 19: on the demo, simulate's "current rules" showed Faithful 433 where sync and the report showed 453.
    Simulate counts the rung each contact qualifies for; a sync, the rung it stands on, a held one included. Flo
    met Familiar (a discovery meeting 130 days ago, two replies before it); the meeting left the 120-day listening
    window 10 days ago, so she qualifies for Friend and the 30-day grace holds her on Familiar."""
    flo = org.contact("Flo", known_for_days=400)
    org.reply(flo, 180)
    org.reply(flo, 175)
    org.meeting(flo, 130, "Discovery session")
    org.reply(org.contact("Cy"), 10)  # a Friend either way
    result = org.sync()
    assert result.per_rung == {"Fringe": 0, "Friend": 1, "Familiar": 1, "Faithful": 0, "Forever": 0}

    proc = cli(
        org, "simulate", "--rules", str(DEFAULT_RULES), "--as-of", org.as_of.isoformat(), "--weeks", "0", "--json"
    )

    assert proc.returncode == 0, proc.stderr
    sim = json.loads(proc.stdout)
    assert sim["per_rung"]["current"] == {"Fringe": 0, "Friend": 2, "Familiar": 0, "Faithful": 0, "Forever": 0}
    assert sim["per_rung"]["synced_current"] == result.per_rung  # what the sync wrote, rung by rung
    assert "Friend 1 (not 2), Familiar 1 (not 0)" in sim["counts_note"]
    assert "1 contact held above the rung they qualify for" in sim["counts_note"]
    text = cli(org, "simulate", "--rules", str(DEFAULT_RULES), "--as-of", org.as_of.isoformat(), "--weeks", "0")
    assert "A sync (and `status`, and the report of the current state) counts the rung a contact stands on" in (
        " ".join(text.stdout.split())
    )


def test_simulate_says_nothing_of_a_difference_when_nobody_is_held(org: Org) -> None:
    org.reply(org.contact("Cy"), 10)
    org.sync()
    proc = cli(
        org, "simulate", "--rules", str(DEFAULT_RULES), "--as-of", org.as_of.isoformat(), "--weeks", "0", "--json"
    )
    sim = json.loads(proc.stdout)
    assert sim["per_rung"]["current"] == sim["per_rung"]["synced_current"]
    assert sim["counts_note"] == ""


def test_simulating_a_rung_the_crm_picklist_lacks_warns_instead_of_failing(org: Org) -> None:
    org.contact("Ada")
    renamed = org.folder / "renamed.yaml"
    renamed.write_text(DEFAULT_RULES.read_text().replace("  - name: Forever", "  - name: Evangelist"))
    proc = cli(org, "simulate", "--rules", str(renamed), "--as-of", org.as_of.isoformat(), "--weeks", "0")
    assert proc.returncode == 0, proc.stderr
    assert "warning: " in proc.stdout
    assert "rung 'Evangelist' is not a value of the CRM picklist Trust_Stage__c" in proc.stdout


def test_a_report_before_any_sync_says_there_is_no_earlier_placement(org: Org, tmp_path: Path) -> None:
    ada = org.contact("Ada")
    org.reply(ada, 5)
    out = tmp_path / "first.html"
    proc = cli(org, "report", "--out", str(out), "--as-of", org.as_of.isoformat())
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    assert "No sync has written to this CRM yet" in page
    assert 'id="chart-movement"' not in page
    assert "Rungs by owner, as the engine places them today" in page
    assert org.fields(ada)["stage"] is None  # the report computed Friend, and wrote nothing


# -- the report in a real browser ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's headless Chromium. A test never installs software: `.ci/run` installs it, and README says how."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "Chromium is not installed (no `chromium` on PATH): `.ci/run` provides it; "
        "see README, 'Try it on a fresh machine'"
    )


def browse(chromium: str, page: Path, folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Load the page headless and offline (any request goes to a dead proxy), the console on stderr, and every
    request the browser makes in `folder/net.json`."""
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={folder / 'profile'}",
            "--proxy-server=http://127.0.0.1:9",
            "--enable-logging=stderr",
            "--v=0",
            f"--log-net-log={folder / 'net.json'}",
            "--virtual-time-budget=5000",
            "--hide-scrollbars",
            *extra,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )


def console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "Uncaught" in line or ("CONSOLE" in line and "rror" in line)]


def page_requests(folder: Path) -> set[str]:
    """Network requests the page made (the browser's own update and account pings are not the page's)."""
    events = json.loads((folder / "net.json").read_text())["events"]
    return {
        e["params"]["url"]
        for e in events
        if "site=file://" in str(e.get("params", {}).get("site_for_cookies", ""))
        and str(e["params"].get("url", "")).startswith(("http:", "https:"))
    }


# Run inside the page once it has drawn: every element outside a sideways-scrolling box (`.scroll`) must lie within
# the page's width. The result goes to the frame around the page (a message crosses file:// origins).
_WIDTH_CHECK = """
window.addEventListener("load", function () {
  setTimeout(function () {
    var width = document.documentElement.clientWidth;
    var wide = [];
    document.querySelectorAll("body *").forEach(function (el) {
      if (el.closest("script, #js-plotly-tester")) { return; }
      if (el.parentElement && el.parentElement.closest(".scroll")) { return; }
      var r = el.getBoundingClientRect();
      if ((r.width || r.height) && (r.right > width + 1 || r.left < -1)) {
        wide.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + "." + (el.getAttribute("class") || "")
          + " " + Math.round(r.left) + ".." + Math.round(r.right));
      }
    });
    window.parent.postMessage(JSON.stringify({
      width: width, scroll: document.documentElement.scrollWidth, wide: wide
    }), "*");
  }, 1500);
});
"""


def assert_fits(chromium: str, page: Path, tmp_path: Path, width: int) -> None:
    """The page laid out `width` px wide (a frame of that width: headless Chromium's window is at least 500 px):
    the page does not scroll sideways, and no element is wider than it."""
    checked = tmp_path / f"{page.stem}-checked.html"
    checked.write_text(page.read_text().replace("</body>", f"<script>{_WIDTH_CHECK}</script>\n</body>"))
    frame = tmp_path / f"{page.stem}-at-{width}.html"
    frame.write_text(
        '<!DOCTYPE html><html><body style="margin:0"><pre id="result"></pre>'
        f'<iframe src="{checked.name}" style="width:{width}px;height:3000px;border:0;display:block"></iframe>'
        '<script>window.addEventListener("message", function (m) {'
        'document.getElementById("result").textContent = m.data; });</script></body></html>'
    )
    proc = browse(chromium, frame, tmp_path, "--dump-dom", "--window-size=1500,3000")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console_errors(proc.stderr) == []
    found = re.search(r'<pre id="result">([^<]*)</pre>', proc.stdout)
    assert found and found.group(1), "the width check did not report: the page did not load or draw"
    result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["width"] == width
    assert result["scroll"] <= width, f"the page scrolls sideways at {width} px: {result}"
    assert result["wide"] == [], f"wider than the page at {width} px: {result['wide'][:10]}"


def demo_org(org: Org) -> None:
    org.load_demo(contacts=400, seed=7)
    org.sync()


def assert_renders(chromium: str, page: Path, tmp_path: Path, charts: set[str]) -> None:
    text = page.read_text()
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)\s*=\s*["']?(https?:)?//""", text), (
        "the page loads something from the network"
    )
    assert set(re.findall(r'id="chart-(\w+)"', text)) == charts

    proc = browse(chromium, page, tmp_path, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console_errors(proc.stderr) == []
    assert page_requests(tmp_path) == set()
    dom = proc.stdout
    for name in charts:  # plotly drew each chart: its div holds the svg layers
        drawn = dom.split(f'id="chart-{name}"', 1)[1].split('id="chart-', 1)[0]
        assert 'class="main-svg"' in drawn, f"chart {name} did not render"
    shot = tmp_path / f"{page.stem}.png"
    proc = browse(chromium, page, tmp_path, f"--screenshot={shot}", "--window-size=1200,3000")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.stat().st_size > 50_000  # a page of charts, not a blank one
    print(f"screenshot: {shot}")  # noqa: T201 - for a human to look at


def test_the_report_of_the_current_state_renders_offline_in_a_real_browser(
    org: Org, chromium: str, tmp_path: Path
) -> None:
    demo_org(org)
    org.sync(days_later=7)  # a second run
    before = org.snapshot()
    out = tmp_path / "current.html"
    proc = cli(org, "report", "--out", str(out), "--as-of", org.as_of.isoformat())
    assert proc.returncode == 0, proc.stderr
    assert f"Report written to {out}" in proc.stdout
    text = out.read_text()
    assert "Trust ladder: current state" in text
    assert "No run history is recorded yet" not in text
    crm = LocalCrm.open(org.database)
    try:
        owners = [r[0] for r in crm.con.execute('SELECT "Name" FROM "User"').fetchall()]
    finally:
        crm.close()
    assert owners
    assert all(f'"{name}"' in text for name in owners)  # rungs by owner, by the owner's name
    assert org.snapshot() == before
    assert_renders(chromium, out, tmp_path, {"ladder", "movement", "heldback", "flags", "owners", "history"})
    for width in (1400, 390):
        assert_fits(chromium, out, tmp_path, width)


def test_the_report_of_a_simulation_renders_offline_in_a_real_browser(org: Org, chromium: str, tmp_path: Path) -> None:
    demo_org(org)
    out = tmp_path / "simulation.html"
    stricter = org.folder / "stricter.yaml"  # three listening conversations for Familiar: many demo contacts fall
    stricter.write_text(
        DEFAULT_RULES.read_text().replace("      - when: listening_120d >= 1", "      - when: listening_120d >= 3")
    )
    proc = cli(
        org, "report", "--simulate", str(stricter), "--out", str(out), "--as-of", org.as_of.isoformat(), "--weeks", "4"
    )
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "Trust ladder: simulation of a rule change" in text
    assert "Familiar \u2192 Friend" in text  # a sample contact's move
    # the demo holds some contacts above the rung they qualify for: the page says why its counts are not sync's
    assert "counts the rung a contact stands on, held ones included" in text
    assert_renders(chromium, out, tmp_path, {"ladder", "movement", "replay", "heldback", "flags", "owners", "history"})
    for width in (1400, 390):
        assert_fits(chromium, out, tmp_path, width)


def test_a_page_wider_than_a_phone_would_be_caught(chromium: str, tmp_path: Path) -> None:
    """The width check itself: a 600 px chart box fails at 390 px and passes at 1400; a wide table in a box that
    scrolls sideways passes at both."""
    page = tmp_path / "wide.html"
    page.write_text(
        '<html><head><meta name="viewport" content="width=device-width"></head><body>'
        '<div class="scroll" style="overflow-x:auto"><table style="width:900px"><tr><td>x</td></tr></table></div>'
        '<div id="chart-x" style="width:600px;height:20px"></div></body></html>'
    )
    assert_fits(chromium, page, tmp_path, 1400)
    with pytest.raises(AssertionError, match="div#chart-x"):
        assert_fits(chromium, page, tmp_path, 390)


def test_a_broken_page_would_be_caught(chromium: str, tmp_path: Path) -> None:
    """The browser check itself: a script error and a network request both show up as console errors."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<html><body><script>undefinedFunction();</script>"
        '<script src="https://cdn.example.com/x.js"></script></body></html>'
    )
    proc = browse(chromium, page, tmp_path, "--dump-dom")
    assert any("undefinedFunction is not defined" in line for line in console_errors(proc.stderr)), proc.stderr
    assert page_requests(tmp_path) == {"https://cdn.example.com/x.js"}
