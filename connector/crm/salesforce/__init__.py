"""The Salesforce backend: a local mirror kept up to date through simple-salesforce, written back field by field.

`backend.SalesforceCrm` is the CrmBackend; the modules beside it each hold one responsibility: sign-in (`auth`),
the one retry policy (`retry`), API usage and the budget (`limits`), the HTTP session that applies both
(`transport`), SOQL (`soql`), a run's pull and its watermarks (`mirror_pull`: REST pages five to a Composite
call in `pages`, Bulk query jobs in `pull`, the optional objects in `details`), the remembered Contact describe
(`describe_cache`), writing back (`write_back` over `push`), the follow-up Tasks (`follow_up_sync`), and the
Contact fields (`fields`).
"""
