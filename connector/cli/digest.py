"""`trust-ladder digest`: one page per owner (HTML and plain text) for a scheduler to mail."""

from __future__ import annotations

import datetime as dt
from contextlib import ExitStack
from pathlib import Path

import click

from connector import config as config_mod
from connector import files as files_mod
from connector import ids, progress
from connector.cli.app import DATE
from connector.cli.report import local
from connector.commands import digest as digest_mod
from connector.commands import sync
from connector.errors import DataError


@click.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for <OwnerId>.html, <OwnerId>.txt and owners.tsv (id, name, email, files).",
)
@click.option("--owner", default=None, metavar="ID", help="Only this owner (a User Id).")
@click.option(
    "--since", type=DATE, default=None, help="Who moved since this day (default: the day of the last sync that wrote)."
)
@click.option(
    "--as-of",
    type=DATE,
    default=None,
    help="Evaluation date (default: the day of the last sync that wrote, else today). Same date, same data: same "
    "result.",
)
@click.pass_obj
def digest(cfg: config_mod.Config, out: Path, owner: str | None, since: dt.date | None, as_of: dt.date | None) -> None:
    """Who moved, open flags with their next steps, who is slipping: one page per owner. Reads the local CRM or
    the Salesforce mirror as last pulled (no API call) and writes nothing to the CRM."""
    problem = files_mod.unwritable_folder(out.expanduser().absolute())
    if problem is not None:  # before the work, and no folder made for a refused run
        raise click.BadParameter(f"{problem}; give a folder the digest can be written into", param_hint="'--out'")
    owner = _owner(owner)  # before the work, as the folder
    state_path = cfg.resolve(cfg.state.path)
    with progress.Steps(3, "digest") as steps:
        with ExitStack() as stack:
            with steps.step("reading the CRM"):
                crm = stack.enter_context(local(cfg))
            with steps.step("placing contacts on the ladder"):
                digests = digest_mod.gather(
                    crm.con,
                    sync.load_rules(cfg),
                    as_of or digest_mod.default_as_of(state_path),
                    state_path,
                    since=since,
                    owner=owner,
                    instance_url=crm.meta(digest_mod.INSTANCE_KEY) if cfg.crm.backend == "salesforce" else None,
                )
        if owner is not None and not digests:
            # Exit 5, as for an unknown contact Id in `explain`: the Id is well formed, the data has nothing for it.
            raise DataError(f"no contact is owned by {owner}: no digest written; check the User Id (OwnerId)")
        with steps.step("writing the pages"):
            files = digest_mod.write(digests, out)
    click.echo(
        f"Digest for {len(digests)} owner{'s' if len(digests) != 1 else ''} written to {out} "
        f"({len(files)} files; owners.tsv lists who gets which)."
    )


def _owner(owner: str | None) -> str | None:
    """The owner's User Id as the CRM keys it, whatever its case or length; exit 5 for what is no Id at all."""
    if owner is None:
        return None
    try:
        return ids.typed(owner)
    except ValueError as e:
        raise DataError(f"--owner: {e}; give the User Id of the contacts' owner (OwnerId)") from None
