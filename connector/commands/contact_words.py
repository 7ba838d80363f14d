"""How every page names a contact: its name, its account and its Id, because a book of hundreds holds people of the
same name, and the account is what a rep tells them apart by.

The account is named as the CRM holds it when the page is made (connector.crm.local.accounts); a CRM that holds
no name for it (an import without Account.csv) shows its Id instead, and a contact without an account says so.
"""

from __future__ import annotations


def account_words(account: str, account_id: str) -> str:
    """'Northfield Inc'; 'account 001…' when only the Id is known; 'no account'."""
    if account.strip():
        return account.strip()
    return f"account {account_id}" if account_id else "no account"


def who(name: str, account: str, account_id: str, cid: str) -> str:
    """'Maria Lopez (Northfield Inc, 003…)'."""
    return f"{name} ({account_words(account, account_id)}, {cid})"
