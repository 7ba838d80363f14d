"""Reading Sforce-Limit-Info ('Limit Info Header', REST API Developer Guide): the org's counter, not an app's."""

from __future__ import annotations

import pytest
import requests

from connector.crm.salesforce.limits import ApiUsage


@pytest.mark.parametrize(
    "header",
    [
        "api-usage=25/15000",
        "api-usage=25/15000; per-app-api-usage=17/250(appName=trust-ladder)",
        "per-app-api-usage=17/250(appName=trust-ladder); api-usage=25/15000",
        "api-usage=25/15000; api-bursts=1/750",
    ],
)
def test_the_org_counter_is_read_wherever_it_stands_in_the_header(header: str) -> None:
    resp = requests.Response()
    resp.headers["Sforce-Limit-Info"] = header
    usage = ApiUsage(fraction=0.1)
    usage.observe(resp)
    assert (usage.used, usage.limit) == (25, 15000)
