"""`trust-ladder simulate` and `trust-ladder report`: look before a rule change reaches the CRM, and share it.

Both read the configured CRM's data and write nothing to it: the local CRM, or on the Salesforce backend its
mirror as the last sync left it (read-only, no sign-in, no API call). Every table they build is a temp table of
their own connection.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import click

from connector import config as config_mod
from connector import files, progress
from connector.cli.app import DATE
from connector.commands import simulate as simulate_mod
from connector.commands import sync
from connector.commands.rulefile import check_crm_picklists
from connector.crm.factory import open_data
from connector.crm.local.store import LocalCrm
from connector.errors import ConfigError, RuleError
from connector.ruleset.compiler import RuleSet

# Not checked by click (that would be exit 2): a missing rule file or a folder is a rule-file error, exit 4 with
# its path, as for `sync --rules`.
_RULE_FILE = click.Path(path_type=Path)


def _date(_: click.Context, __: click.Parameter, value: dt.date | None) -> dt.date:
    return dt.date.today() if value is None else value


_AS_OF = click.option(
    "--as-of", type=DATE, callback=_date, help="Evaluation date (default: today). Same date, same data: same result."
)
HORIZON = click.option(
    "--horizon",
    type=click.IntRange(1, 36_500),
    default=None,
    help="Days after each month's first day to look for every outcome in the calibration (default: each "
    "outcome's horizon_days).",
)
_WEEKS = click.option(
    "--weeks",
    type=click.IntRange(0, 104),
    default=12,
    show_default=True,
    help="Replay the new rules at every weekly sync of the last N weeks to count flapping (0: skip).",
)


@contextmanager
def local(cfg: config_mod.Config) -> Iterator[LocalCrm]:
    """The configured CRM's data (the local CRM, or the Salesforce mirror), ready for the engine to read in
    place; nothing is written to it."""
    crm = open_data(cfg)
    try:
        crm.tune(cfg.engine, cfg.resolve)
        crm.prepare(cfg.fields, activities=cfg.activities)
        yield crm
    finally:
        crm.close()


def _picklist_notes(crm: LocalCrm, rules: RuleSet, cfg: config_mod.Config) -> list[str]:
    """A sync with these rules would stop before writing: say so, but let the admin look anyway. (The Salesforce
    mirror holds no picklists: the org's are checked by `fields check` and by every sync.)"""
    if cfg.crm.backend != "local":
        return []
    try:
        check_crm_picklists(rules, crm, cfg.fields)
    except RuleError as exc:
        return [f"{f} (a sync with these rules would refuse to write)" for f in exc.findings]
    return []


def _run(
    cfg: config_mod.Config,
    crm: LocalCrm,
    new_file: Path,
    against: Path | None,
    as_of: dt.date,
    weeks: int,
    samples: int,
    steps: progress.Steps,
    horizon: int | None = None,
) -> tuple[simulate_mod.Simulation, RuleSet]:
    from connector.commands import calibrate as calibrate_mod

    current = sync.load_rules(cfg, against)
    new = sync.load_rules(cfg, new_file)
    calibration = None
    if current.outcomes or new.outcomes:  # both rule sets measured on the same months, before the simulation
        calibration = (
            calibrate_mod.calibrate(crm.con, current, as_of, horizon=horizon),
            calibrate_mod.calibrate(crm.con, new, as_of, horizon=horizon),
        )
    sim = simulate_mod.simulate(crm.con, current, new, as_of, weeks=weeks, samples=samples, steps=steps)
    sim.calibration = calibration
    if calibration is None:
        from connector.commands import calibrate_notes

        sim.calibration_skipped = calibrate_notes.no_outcomes(current.path, new.path)
    sim.notes = _picklist_notes(crm, new, cfg)
    return sim, new


@click.command()
@click.option("--rules", "new_file", type=_RULE_FILE, required=True, help="The changed rule file to try.")
@click.option(
    "--against", type=_RULE_FILE, default=None, help="The rule file to compare with (default: the configured one)."
)
@_AS_OF
@_WEEKS
@HORIZON
@click.option(
    "--samples",
    type=click.IntRange(0, 50),
    default=3,
    show_default=True,
    help="Sample contacts shown per moving cell (lowest Ids first).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the simulation as JSON.")
@click.option(
    "--report",
    "report_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write the simulation as a self-contained HTML report.",
)
@click.pass_obj
def simulate(
    cfg: config_mod.Config,
    new_file: Path,
    against: Path | None,
    as_of: dt.date,
    weeks: int,
    horizon: int | None,
    samples: int,
    as_json: bool,
    report_file: Path | None,
) -> None:
    """Who would move where under a changed rule file, on the CRM's current data; writes nothing to the CRM."""
    if report_file is not None:
        problem = files.unwritable_file(report_file.expanduser().absolute())
        if problem is not None:
            raise click.BadParameter(f"{problem}; give a file the report can be written to", param_hint="'--report'")
    total = _READ + _simulate_steps(weeks) + (_PAGE_STEPS if report_file else 0)
    with progress.Steps(total, "simulate") as steps, ExitStack() as stack:
        with steps.step("reading the CRM"):
            crm = stack.enter_context(local(cfg))
        sim, new = _run(cfg, crm, new_file, against, as_of, weeks, samples, steps, horizon)
        page = _simulation_page(cfg, crm, sim, new, steps) if report_file else None
    click.echo(json.dumps(simulate_mod.as_dict(sim), indent=2, default=str) if as_json else simulate_mod.render(sim))
    if page is not None and report_file is not None:
        _write(report_file, page, quiet=as_json)


@click.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where to write the page (default: report.html beside the local CRM or the Salesforce mirror).",
)
@click.option(
    "--simulate",
    "new_file",
    type=_RULE_FILE,
    default=None,
    help="Report a simulation of this rule file against the configured one instead of the current state.",
)
@_AS_OF
@_WEEKS
@HORIZON
@click.pass_obj
def report(
    cfg: config_mod.Config, out: Path | None, new_file: Path | None, as_of: dt.date, weeks: int, horizon: int | None
) -> None:
    """One self-contained HTML page (charts included, opens offline): the ladder, movement, what holds contacts
    back, who is slipping, who moved, flags and owners, with an owner filter."""
    from connector.commands import report as report_mod
    from connector.commands import trend

    data_file = (
        cfg.resolve(cfg.salesforce.mirror)
        if cfg.crm.backend == "salesforce" and cfg.salesforce
        else cfg.resolve(cfg.local.database)
    )
    _check_out(out, data_file.parent / "report.html")
    out = out or data_file.parent / "report.html"
    total = _READ + (_simulate_steps(weeks) if new_file is not None else 1) + _PAGE_STEPS
    with progress.Steps(total, "report") as steps, ExitStack() as stack:
        with steps.step("reading the CRM"):
            crm = stack.enter_context(local(cfg))
        if new_file is not None:
            sim = _run(cfg, crm, new_file, None, as_of, weeks, 3, steps, horizon)
            page = _simulation_page(cfg, crm, *sim, steps)
        else:
            from connector.commands import calibrate as calibrate_mod
            from connector.commands import calibrate_html, calibrate_notes

            rules = sync.load_rules(cfg)
            with steps.step("the trend, month by month"):
                months = trend.by_owner(crm.con, rules, as_of)
            cal = calibrate_mod.calibrate(crm.con, rules, as_of, horizon=horizon) if rules.outcomes else None
            with steps.step("placing contacts on the ladder"):
                data = report_mod.current(crm.con, rules, as_of, cfg.resolve(cfg.state.path), months)
            with steps.step("drawing the page"):
                section = (
                    calibrate_html.section(cal)
                    if cal
                    else calibrate_html.skipped(calibrate_notes.no_outcomes(rules.path))
                )
                page = report_mod.render(data, calibration=section)
    _write(out, page, quiet=False)


_READ = 1  # opening the CRM data
_PAGE_STEPS = 2  # a simulation page: the trend, then the page


def _simulate_steps(weeks: int) -> int:
    return simulate_mod.STEPS + (simulate_mod.REPLAY_STEPS if weeks > 0 else 0)


def _simulation_page(
    cfg: config_mod.Config, crm: LocalCrm, sim: simulate_mod.Simulation, new: RuleSet, steps: progress.Steps
) -> str:
    """The simulation, with the trend of the rules in force (the configured ones), month by month."""
    from connector.commands import calibrate_html, trend
    from connector.commands import report as report_mod

    section = (
        calibrate_html.section(*sim.calibration) if sim.calibration else calibrate_html.skipped(sim.calibration_skipped)
    )
    with steps.step("the trend, month by month"):
        months = trend.by_owner(crm.con, sync.load_rules(cfg), sim.as_of)
    with steps.step("drawing the page"):
        return report_mod.render(report_mod.simulated(crm.con, sim, new, months), calibration=section)


def _check_out(out: Path | None, default: Path) -> None:
    """Before the work: the page can be written where it goes (nothing is created by the check). `--out` is the
    command line's (exit 2); the default, beside the CRM data the config names, is the config's (exit 3)."""
    problem = files.unwritable_file((out or default).expanduser().absolute())
    if problem is None:
        return
    if out is not None:
        raise click.BadParameter(f"{problem}; give a file the report can be written to", param_hint="'--out'")
    raise ConfigError(f"the report goes beside the CRM data by default, but {problem}; give --out FILE")


def _write(path: Path, page: str, *, quiet: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    if not quiet:
        click.echo(f"Report written to {path} ({len(page) / 1e6:.1f} MB, opens offline in any browser).")
