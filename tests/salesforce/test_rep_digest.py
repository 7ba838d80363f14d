"""A rep's digest on the Salesforce backend (issue 19): each contact links to its record on the org's own address,
remembered in the mirror by the last sync's sign-in, so the digest itself makes no call."""

from __future__ import annotations

import datetime as dt

from tests.salesforce import fake_org
from tests.salesforce.conftest import Run
from tests.salesforce.test_cli_stops import _cli


def test_the_digest_links_each_contact_to_its_record_without_an_api_call(run: Run) -> None:
    """The sign-in answer's instance URL ('OAuth 2.0 Username-Password Flow' / SOAP login serverUrl) is where
    Lightning record pages live: /lightning/r/Contact/<Id>/view."""
    ada = run.org.contact("Ada")
    run.org.task(ada, run.as_of - dt.timedelta(days=30), "Feedback on the pilot")  # owed a thank-you
    assert _cli(run, "sync", "--as-of", run.as_of.isoformat()).exit_code == 0
    calls = len(run.org.calls)
    out = run.folder / "digest"
    done = _cli(run, "digest", "--out", str(out), "--as-of", run.as_of.isoformat())
    assert done.exit_code == 0, done.stderr
    assert len(run.org.calls) == calls
    (page,) = out.glob("*.txt")
    assert "1. Ada " in page.read_text()
    assert f"https://{fake_org.INSTANCE}/lightning/r/Contact/{ada}/view" in page.read_text()
    (html,) = out.glob("*.html")
    assert f'<a href="https://{fake_org.INSTANCE}/lightning/r/Contact/{ada}/view">' in html.read_text()
