"""The ready-made schedules in deploy/ are valid for the tools that read them, and run the real command."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from croniter import croniter

from connector.config import NotifySection

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
ROOT = DEPLOY.parent


def test_the_crontab_line_is_valid_and_runs_sync_every_15_minutes() -> None:
    lines = [ln for ln in (DEPLOY / "crontab").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    lines = [ln for ln in lines if not re.match(r"^[A-Z_]+=", ln)]  # cron's variable lines (the alert webhook)
    assert len(lines) == 1
    fields = lines[0].split(maxsplit=5)
    schedule, command = " ".join(fields[:5]), fields[5]
    assert croniter.is_valid(schedule)
    assert schedule == "*/15 * * * *"
    assert "trust-ladder sync" in command
    shlex.split(command)  # balanced quoting


def test_the_systemd_units_verify() -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    service = (DEPLOY / "systemd" / "trust-ladder.service").read_text()
    assert "ExecStart=/opt/trust-ladder/.venv/bin/trust-ladder sync" in service
    # verify also checks that ExecStart exists and the User is known: point them at what this machine has.
    tmp = Path(subprocess.check_output(["mktemp", "-d"], text=True).strip())
    runnable = service.replace("/opt/trust-ladder/.venv/bin/trust-ladder", "/bin/true")
    (tmp / "trust-ladder.service").write_text(runnable.replace("User=trust-ladder", "User=root"))
    shutil.copy(DEPLOY / "systemd" / "trust-ladder.timer", tmp)
    proc = subprocess.run(
        [analyze, "verify", str(tmp / "trust-ladder.service"), str(tmp / "trust-ladder.timer")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "OnCalendar=*:0/15" in (tmp / "trust-ladder.timer").read_text()


def test_the_kubernetes_cronjob_forbids_overlap_and_keeps_its_state() -> None:
    (doc,) = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "cronjob.yaml").read_text()))
    assert (doc["apiVersion"], doc["kind"]) == ("batch/v1", "CronJob")
    spec = doc["spec"]
    assert croniter.is_valid(spec["schedule"])
    assert spec["concurrencyPolicy"] == "Forbid"
    assert set(spec) <= {
        "schedule",
        "concurrencyPolicy",
        "startingDeadlineSeconds",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
        "jobTemplate",
        "suspend",
        "timeZone",
    }
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    (container,) = pod["containers"]
    assert container["args"] == ["sync"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert set(mounts) == set(volumes)
    assert "persistentVolumeClaim" in volumes["data"]  # the state store and lock survive between runs
    assert container["workingDir"] == mounts["data"]


def test_the_systemd_unit_counts_only_0_and_1_as_success_never_an_interrupted_run() -> None:
    """Exit 130 (Ctrl-C) and 143 (SIGTERM) are interrupted runs: the unit must fail on them (issue 10)."""
    service = (DEPLOY / "systemd" / "trust-ladder.service").read_text()
    (line,) = [ln for ln in service.splitlines() if ln.startswith("SuccessExitStatus=")]
    assert line.removeprefix("SuccessExitStatus=").split() == ["1"]


def test_every_schedule_shows_how_a_failed_run_is_alerted() -> None:
    """Issue 19: each schedule says where the alert webhook's variable comes from, and the [notify] lines of
    config.example.toml, uncommented, name that same variable in a valid config."""
    crontab = (DEPLOY / "crontab").read_text()
    assert re.search(r"^TRUST_LADDER_WEBHOOK_URL=https://", crontab, re.MULTILINE)  # cron passes it to the run
    for path in (DEPLOY / "systemd" / "trust-ladder.service", DEPLOY / "kubernetes" / "cronjob.yaml"):
        text = path.read_text()
        assert 'webhook_url_env = "TRUST_LADDER_WEBHOOK_URL"' in " ".join(text.replace("#", " ").split())
    example = (ROOT / "config.example.toml").read_text()
    section = example[example.index("[notify]") : example.index("[activities]")]
    lines = [re.sub(r"^# ", "", ln).split("  #")[0] for ln in section.splitlines()[1:] if " = " in ln]
    cfg = NotifySection(**tomllib.loads("\n".join(lines)))
    assert cfg.webhook_url_env == "TRUST_LADDER_WEBHOOK_URL"
    assert cfg.mail_command[0] == "mail"
