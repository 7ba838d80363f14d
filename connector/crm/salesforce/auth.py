"""Sign-in through simple-salesforce, one function per mode; secrets come from environment variables NAMED in
the config, and never reach a log line or an error message (only the variable names do): each one read is
registered with `log.add_secret`, so it is masked wherever it would appear, whatever the source.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from connector import log
from connector.config import SalesforceSection
from connector.crm.salesforce.transport import SalesforceSession
from connector.errors import ConfigError, CrmError

_log = log.get("trust_ladder.salesforce")

_SECRET_KWARGS = ("password", "security_token", "consumer_secret", "session_id", "privatekey")


class SignInFailed(CrmError):
    """Salesforce refused the sign-in. Fatal for the run, and never retried: a retry storm can lock the user."""


def _secret(env: str, what: str) -> str:
    value = os.environ.get(env)
    if not value:
        raise ConfigError(
            f"[salesforce] {what}: the environment variable {env} is not set (the config names the "
            "variable; the secret itself never goes in the config file)"
        )
    return value


def _require(value: str | None, key: str, mode: str) -> str:
    if not value:
        raise ConfigError(f'[salesforce] {key} is required when auth = "{mode}"')
    return value


def _remember(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Register every secret value a sign-in uses, the private key file's content included."""
    for key in _SECRET_KWARGS:
        log.add_secret(kwargs.get(key))
    if kwargs.get("password") and kwargs.get("security_token"):
        log.add_secret(str(kwargs["password"]) + str(kwargs["security_token"]))  # as the SOAP login sends them
    key_file = kwargs.get("privatekey_file")
    if key_file:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            log.add_secret(Path(key_file).read_text(encoding="utf-8"))
    return kwargs


def login_kwargs(section: SalesforceSection) -> dict[str, Any]:
    return _remember(_login_kwargs(section))


def _login_kwargs(section: SalesforceSection) -> dict[str, Any]:
    """The keyword arguments of `Salesforce(...)` for the configured mode (secrets read from the environment)."""
    mode = section.auth
    common: dict[str, Any] = {"version": section.api_version}
    if mode == "password":
        return {
            **common,
            "username": _require(section.username, "username", mode),
            "password": _secret(section.password_env, "password_env"),
            "security_token": os.environ.get(section.security_token_env, ""),
            "domain": section.domain,
        }
    if mode == "jwt":
        key_file = section.private_key_file
        if key_file is None:
            raise ConfigError('[salesforce] private_key_file is required when auth = "jwt"')
        return {
            **common,
            "username": _require(section.username, "username", mode),
            "consumer_key": _secret(section.consumer_key_env, "consumer_key_env"),
            "privatekey_file": str(key_file),
            "domain": section.domain,
        }
    if mode == "client_credentials":
        if section.domain in ("login", "test"):
            raise ConfigError(
                '[salesforce] domain must be your My Domain (e.g. "acme.my") when auth = "client_credentials"'
            )
        return {
            **common,
            "consumer_key": _secret(section.consumer_key_env, "consumer_key_env"),
            "consumer_secret": _secret(section.consumer_secret_env, "consumer_secret_env"),
            "domain": section.domain,
        }
    return {
        **common,
        "session_id": _secret(section.access_token_env, "access_token_env"),
        "instance_url": _require(section.instance_url, "instance_url", mode),
    }


class Connection:
    """The signed-in `Salesforce` object, renewed in place when the session expires mid-run."""

    def __init__(self, section: SalesforceSection, session: SalesforceSession) -> None:
        self.section = section
        self.session = session
        self._sf: Salesforce | None = None
        if section.auth == "session":
            session.renew_hint = (
                f"the access token in {section.access_token_env} cannot be renewed here: get a "
                "fresh one (`sf org display`) and run again"
            )
        else:
            session.renew = self._renew

    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            self._sf = self._login()
        return self._sf

    def _login(self) -> Salesforce:
        kwargs = login_kwargs(self.section)
        _log.info("salesforce.sign_in", mode=self.section.auth, domain=self.section.domain)
        try:
            sf = Salesforce(session=self.session, **kwargs)
        except SalesforceAuthenticationFailed as exc:
            code = getattr(exc, "code", "")
            _log.error("salesforce.sign_in_failed", mode=self.section.auth, code=str(code))
            raise SignInFailed(
                f"Salesforce refused the sign-in ({self.section.auth}, domain "
                f"{self.section.domain}): {code}. Check the user and the secrets in the environment "
                "variables named in [salesforce]; not retried."
            ) from None
        except OSError as exc:  # an unreadable private key file, or no route to the login host
            raise SignInFailed(f"could not sign in to Salesforce ({self.section.auth}): {type(exc).__name__}") from None
        log.add_secret(str(sf.session_id))
        return sf

    def _renew(self) -> tuple[str, str]:
        self._sf = self._login()
        log.add_secret(str(self._sf.session_id))
        return str(self._sf.session_id), str(self._sf.sf_instance)

    @property
    def base_url(self) -> str:
        return str(self.sf.base_url)

    def headers(self, **extra: str) -> dict[str, str]:
        return {**self.sf.headers, **extra}
